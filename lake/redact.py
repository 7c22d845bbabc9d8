"""Secrets out of every message: the one place errors, log lines and run records pass.

Two nets. The configured secret values themselves (passwords, tokens, API keys, S3 keys,
webhook URLs, and any `${VAR}` whose name says it is secret) are registered as the
configuration loads and replaced wherever they appear, as typed or URL-encoded. Then the
shapes a secret takes in text a driver or server wrote: URL userinfo
(`scheme://user:p@ss/w:rd@host`, the password up to the token's last `@`), `password=`
unquoted, 'single' or "double" quoted (libpq's key=value), `Bearer`/`Basic` credentials,
and key-like query parameters (`api_key=`, `token=`, `X-Amz-Signature=`...).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LENGTH = 6
"""Shorter registered values are left to the patterns: masking every `abc` would garble
messages and tell an attacker the secret is short anyway."""
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_KEY|CREDENTIAL|WEBHOOK",
                         re.IGNORECASE)  # fmt: skip

_values: set[str] = set()
_lock = threading.Lock()

_KEY_VALUE = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|secret|secret_access_key|token|api_?key)\s*[=:]\s*)"
    r"(?P<secret>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,;&'\"]+)",
    re.IGNORECASE,
)
_JSON_FIELD = re.compile(
    r"(?P<head>\"(?:password|passwd|secret|token|api_?key|secret_access_key)\"\s*:\s*)"
    r"(?P<secret>\"(?:[^\"\\]|\\.)*\")",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(r"(?P<head>\b(?:Bearer|Basic)\s+)(?P<secret>[A-Za-z0-9._~+/=-]{6,})")
_QUERY_PARAM = re.compile(
    r"(?P<head>[?&;](?:api[_-]?key|apikey|key|token|access_token|auth|sig|signature|"
    r"x-amz-signature|x-amz-credential|x-amz-security-token|password)=)(?P<secret>[^&\s#'\"]+)",
    re.IGNORECASE,
)


def register(*values: str | None) -> None:
    """Known secret values, masked wherever they appear (and URL-encoded)."""
    with _lock:
        for value in values:
            if value and len(value) >= MIN_LENGTH:
                _values.update({value, quote(value, safe=""), quote_plus(value)})


def register_dsn(dsn: str | None) -> None:
    """A connection string's password: URL userinfo, or libpq's `password=` (quoted or not)."""
    if not dsn:
        return
    register(userinfo_password(dsn))
    for match in _KEY_VALUE.finditer(dsn):
        value = match["secret"]
        if value[:1] in ("'", '"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        register(value)


def userinfo_password(url: str) -> str | None:
    """The password of `scheme://user:password@host...`, taking the last `@` (so a
    password may hold `@`, `:` and `/` unencoded, as people type them)."""
    _, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    userinfo = rest.rsplit("@", 1)[0]
    return userinfo.split(":", 1)[1] if ":" in userinfo else None


def redact(text: str) -> str:
    if not text:
        return text
    with _lock:
        values = sorted(_values, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    text = re.sub(r"\S+", _mask_userinfo, text)
    for pattern in (_JSON_FIELD, _KEY_VALUE, _AUTH_SCHEME, _QUERY_PARAM):
        text = pattern.sub(lambda m: f"{m['head']}{MASK}", text)
    return text


def _mask_userinfo(token: re.Match[str]) -> str:
    """A whitespace-free token holding `scheme://user:password@`, password masked to the
    token's last '@' (a regex would stop at the password's own '@')."""
    text = token[0]
    if "://" not in text or userinfo_password(text) is None:
        return text
    head, _, rest = text.partition("://")
    userinfo, host = rest.rsplit("@", 1)
    return f"{head}://{userinfo.split(':', 1)[0]}:{MASK}@{host}"


class RedactingFilter(logging.Filter):
    """On a log handler: the message and any traceback, redacted before they are written."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), ()
        if record.exc_info:  # (another handler may have cached it unredacted)
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
        return True


def redact_all(value: Any) -> Any:
    """Every string inside a JSON-like value (a run record), redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_all(v) for v in value]
    return value
