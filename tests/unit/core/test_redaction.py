"""Secrets masked by value: the Redactor and the log filter that carries it to every record."""

from __future__ import annotations

import logging
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccproxy_core.config.model import structure
from ccproxy_core.core.redaction import Redactor, SecretsFilter, mask_setting

GSK = "gsk_" + "Q7fJ2kLm9Xp3Rt8Vw1Yz" * 2
AIZA = "AIzaSyD-" + "x9Y8w7V6u5T4s3R2q1P0o9N8m7L6k5J"
HEX = "3f9a1c0b7e6d5f4a2b1c0d9e8f7a6b5c"
OPAQUE = "Zm9vYmFyYmF6cXV4LXRva2VuLXZhbHVl"


def test_every_format_is_masked_by_value() -> None:
    """A provider quoting any key format gets the masked form, not the key, whatever its prefix."""
    redactor = Redactor(GSK, AIZA, HEX, OPAQUE)
    text = f"Incorrect API key provided: {GSK}. Also {AIZA}, {HEX} and Bearer {OPAQUE}."
    clean = redactor.scrub(text)
    assert all(secret not in clean for secret in (GSK, AIZA, HEX, OPAQUE))
    assert mask_setting(GSK) in clean and clean.startswith("Incorrect API key provided: gsk_")


def test_a_secret_containing_another_is_masked_whole() -> None:
    """Longest first: a key that contains a shorter configured key leaves no part of itself shown."""
    short, long = "abcdefgh12345678", "prefix-abcdefgh12345678-suffix"
    clean = Redactor(short, long).scrub(f"got {long} and {short}")
    assert clean == f"got {mask_setting(long)} and {mask_setting(short)}"


def test_short_values_are_not_secrets() -> None:
    """Values under 8 characters are ignored: they would mask ordinary words."""
    assert Redactor("abc", "1234567").scrub("abc 1234567") == "abc 1234567"


def test_bytes_and_json_are_scrubbed_too() -> None:
    """Relayed bodies (bytes) and JSON documents (every string, keys too) lose their secrets."""
    redactor = Redactor(GSK)
    assert GSK.encode() not in redactor.scrub_bytes(b'{"error": {"message": "bad key ' + GSK.encode() + b'"}}')
    doc = redactor.scrub_json({"lastError": f"key {GSK}", GSK: [1, f"{GSK}"], "n": 3})
    assert GSK not in repr(doc) and doc["n"] == 3


def test_the_pattern_is_rebuilt_only_when_the_set_changes() -> None:
    """The same secrets reuse the compiled pattern; a rotated token is masked at once."""
    tokens = ["token-one-aaaaaaaa"]
    redactor = Redactor()
    redactor.track(lambda: tokens)
    redactor.scrub("x")
    first = redactor._state
    redactor.scrub("y")
    assert redactor._state is first
    tokens[0] = "token-two-bbbbbbbb"
    assert "token-two-bbbbbbbb" not in redactor.scrub("now token-two-bbbbbbbb")
    assert redactor._state is not first


def test_a_rotated_out_token_stays_masked() -> None:
    """An access token replaced by a refresh is still valid for a while: it stays masked."""
    tokens = ["old-access-token-1234"]
    redactor = Redactor()
    redactor.track(lambda: tokens)
    redactor.scrub("")
    tokens[0] = "new-access-token-5678"
    assert "old-access-token-1234" not in redactor.scrub("a late echo of old-access-token-1234")


def test_config_secrets_are_keys_proxy_key_and_header_values() -> None:
    """The configuration's secrets: apikey, api_key(s), headers values and a Bearer header's token."""
    config = structure(
        {
            "apikey": "proxy-key-123456",
            "providers": [
                {"name": "g", "kind": "openai", "api_base_url": "http://127.0.0.1:1/v1", "api_key": GSK},
                {
                    "name": "c",
                    "kind": "openai",
                    "api_base_url": "http://127.0.0.1:1/v1",
                    "api_keys": [HEX],
                    "headers": {"Authorization": f"Bearer {OPAQUE}", "X-Key": AIZA},
                },
            ],
        }
    )
    assert set(config.secrets()) == {"proxy-key-123456", GSK, HEX, f"Bearer {OPAQUE}", OPAQUE, AIZA}


@pytest.fixture
def secret_record() -> logging.LogRecord:
    try:
        raise ValueError(f"upstream refused {GSK}")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("ccproxy.test", logging.DEBUG, __file__, 1, "key %s from %s", (GSK, "x"), exc_info)
    record.__dict__["fields"] = {"header": AIZA}  # as the access log passes `extra`
    return record


def test_the_log_filter_scrubs_message_arguments_traceback_and_fields(secret_record: logging.LogRecord) -> None:
    """A record's message, arguments, traceback and structured fields all lose their secrets."""
    SecretsFilter(Redactor(GSK, AIZA)).filter(secret_record)
    handler = logging.Handler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    out = handler.format(secret_record)
    assert GSK not in out and "ValueError" in out and mask_setting(GSK) in out
    assert secret_record.__dict__["fields"] == {"header": mask_setting(AIZA)}


def test_the_log_filter_never_breaks_logging(secret_record: logging.LogRecord) -> None:
    """A source that fails withholds the record instead of raising into the caller."""
    redactor = Redactor()
    redactor.track(lambda: 1 / 0)  # type: ignore[arg-type, return-value]
    assert SecretsFilter(redactor).filter(secret_record) is True
    assert GSK not in secret_record.getMessage() and secret_record.exc_info is None


def test_a_secret_that_starts_another_is_masked_whole() -> None:
    """Where one secret is a prefix of another, the longer one is matched, not its start."""
    clean = Redactor("12345678", "12345678abcdefgh").scrub("x 12345678abcdefgh y 12345678 z")
    assert clean == f"x {mask_setting('12345678abcdefgh')} y {mask_setting('12345678')} z"


@given(st.lists(st.text(alphabet="ab.*+?()[]|\\^$-_xyz0123", min_size=8, max_size=20), min_size=1, max_size=8))
def test_no_secret_survives_whatever_its_characters(values: list[str]) -> None:
    """Any set of secrets, regex metacharacters and shared prefixes included, is fully masked."""
    text = " | ".join(values)
    redactor = Redactor(*values)
    assert not any(v in redactor.scrub(text) for v in values)
    assert redactor.scrub_bytes(text.encode()) == redactor.scrub(text).encode()
