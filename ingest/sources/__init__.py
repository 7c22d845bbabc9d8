"""Every kind of source, by the name used as `kind:` in lakehouse.yml."""

from __future__ import annotations

from ingest.sources.base import Extract, Opened, Source, Stream
from ingest.sources.csv import CsvSource

KINDS: dict[str, type[Source]] = {cls.kind: cls for cls in (CsvSource,)}

__all__ = ["KINDS", "CsvSource", "Extract", "Opened", "Source", "Stream"]
