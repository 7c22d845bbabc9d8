"""Errors raised while extracting and landing sources."""

from __future__ import annotations

import re

from lake.redact import redact

MAX_REASON = 600


class IngestError(Exception):
    """An ingest failure, always naming the source and table (and file or batch if known)."""

    def __init__(self, source: str, table: str, cause: str, where: str | None = None) -> None:
        cause, where = redact(cause), (redact(where) if where else where)
        self.source, self.table, self.cause, self.where = source, table, cause, where
        at = f" ({where})" if where else ""
        super().__init__(f"source {source!r}, table {table!r}{at}: {cause}")


def reason(exc: BaseException) -> str:
    """What went wrong, in one line: the error's first paragraph, without the record it
    quotes (DuckDB's `Original Line:` holds the row itself: megabytes, or personal data),
    with DuckDB's own option names mapped to ours."""
    kept: list[str] = []
    for line in (str(exc).strip() or type(exc).__name__).splitlines():
        line = line.strip()
        if not line:
            if kept:
                break
            continue
        if not line.startswith(("Original Line:", "LINE ")):
            kept.append(line)
    text = "; ".join(kept)
    text = re.sub(r"Possible Solution: .*max_line_size=(\d+)",
                  lambda m: f"raise csv.max_line_size_mb to {-(-int(m[1]) // 2**20)} or more",
                  text)  # fmt: skip
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "..."
