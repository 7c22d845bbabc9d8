"""One place masks secrets in every message, log line and run record."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest

from lake.redact import RedactingFilter, redact, redact_all, register, register_dsn

HARD = "p@ss:w/rd 'q\"x"  # '@', ':', '/', quotes and a space


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cannot reach postgresql://shop:P@ss/w%rd!@db:5432/shop (refused)",
         "cannot reach postgresql://shop:***@db:5432/shop (refused)"),
        ('connect "postgresql://u:a:b@h/d"', 'connect "postgresql://u:***@h/d"'),
        ("host=db password=s3cret dbname=x", "host=db password=*** dbname=x"),
        ("host=db password='open sesame;\"x\\'' dbname=x", "host=db password=*** dbname=x"),
        ('host=db password="two words" dbname=x', "host=db password=*** dbname=x"),
        ("GET https://api.example/v1?page=2&api_key=k-456&x=1",
         "GET https://api.example/v1?page=2&api_key=***&x=1"),
        ("Authorization: Bearer vendor-token-123", "Authorization: Bearer ***"),
        ('{"password": "a\\"b", "user": "x"}', '{"password": ***, "user": "x"}'),
        ("s3 secret_access_key=AbC/dEf+123 region=us", "s3 secret_access_key=*** region=us"),
        ("https://x.example/a?X-Amz-Signature=abcdef&X-Amz-Date=1",
         "https://x.example/a?X-Amz-Signature=***&X-Amz-Date=1"),
        # nothing secret: unchanged
        ("http://127.0.0.1:8765/reviews page 3: the API sent cursor 4 again",
         "http://127.0.0.1:8765/reviews page 3: the API sent cursor 4 again"),
        ("source 'shop', table 'orders' (orders.csv line 7): 3 columns, expected 4",
         "source 'shop', table 'orders' (orders.csv line 7): 3 columns, expected 4"),
    ],
)  # fmt: skip
def test_the_shapes_secrets_take_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_registered_values_are_masked_as_typed_and_url_encoded() -> None:
    register(HARD)
    for shown in (HARD, quote(HARD, safe="")):
        assert redact(f"the server said: {shown}!") == "the server said: ***!"
    register("abcde")  # too short to mask everywhere: left to the patterns
    assert redact("abcde f") == "abcde f"


def test_a_dsn_password_is_registered_in_every_form() -> None:
    register_dsn("postgresql://shop:Zx9@q:/w!@db:5432/shop")
    register_dsn("host=db password='sp ace\\'s' user=u")
    assert redact("auth failed for Zx9@q:/w! at db") == "auth failed for *** at db"
    assert redact("a password of sp ace's, echoed") == "a password of ***, echoed"


def test_log_lines_and_tracebacks_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    register("tok-9f8e7d6c")
    logger = logging.getLogger("test.redact")
    caplog.handler.addFilter(RedactingFilter())
    try:
        raise RuntimeError("rejected tok-9f8e7d6c")
    except RuntimeError:
        logger.exception("call with %s failed", "tok-9f8e7d6c")
    assert "tok-9f8e7d6c" not in caplog.text
    assert "call with *** failed" in caplog.text and "RuntimeError: rejected ***" in caplog.text


def test_run_records_are_redacted_everywhere() -> None:
    record = {"error": "postgresql://u:pw1234@h/d down", "tables": [{"error": "Bearer abcdefgh"}],
              "rows": 3}  # fmt: skip
    assert redact_all(record) == {
        "error": "postgresql://u:***@h/d down", "tables": [{"error": "Bearer ***"}], "rows": 3
    }  # fmt: skip
