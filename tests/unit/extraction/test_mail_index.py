"""Message index helpers: opaque page cursors and JSON list capping (no storage involved)."""
import base64
import json

import pytest

from mailextract.errors import InvalidRequest
from mailextract.storage.mail_index import MAX_JSON_UNITS, _cap, decode_page_cursor, encode_page_cursor

TABLE_STRING_LIMIT_BYTES = 64 * 1024  # storage.md: a string property at most 64 KiB (UTF-16)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- cursors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [
    {"PartitionKey": "c1", "RowKey": "AAMkAGI2%2FTG93AAA="},
    {"PartitionKey": "1!8!YzE-", "RowKey": "1!40!QUFNa0FHSTI-"},
    {"RowKey": "Überprüfung 📬 ?&=/+"},
    {"PartitionKey": ""},
])
def test_page_cursor_round_trip(token):
    cursor = encode_page_cursor(token)
    assert isinstance(cursor, str) and cursor
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor  # safe in a query string
    assert decode_page_cursor(cursor) == token


@pytest.mark.parametrize("empty", [None, {}])
def test_no_token_means_no_cursor(empty):
    assert encode_page_cursor(empty) is None


@pytest.mark.parametrize("empty", [None, ""])
def test_no_cursor_means_first_page(empty):
    assert decode_page_cursor(empty) is None


@pytest.mark.parametrize("cursor", [
    "a",                                   # impossible base64 length
    "!!!!",                                # not base64 at all
    "====",
    "é",
    "bm90IGpzb24",                         # "not json"
    _b64(b"null"),
    _b64(b"[]"),
    _b64(b'"PartitionKey"'),
    _b64(b"42"),
    _b64(b'{"PartitionKey": 1}'),          # values must be strings
    _b64(b'{"PartitionKey": null}'),
    _b64(b'{"PartitionKey": {"a": "b"}}'),
    _b64(b"\xff\xfe\x00garbage"),          # not UTF-8
    _b64(b"{}"),                            # no continuation in it
    _b64(b'{"a": ""}'),                     # not a Table continuation token
    _b64(b'{"NextPartitionKey": "1!8!YzE-", "NextRowKey": "x"}'),  # header names, not token keys
    _b64(b'{"PartitionKey": "c1"'),        # truncated
    encode_page_cursor({"PartitionKey": "c1"})[:-3],
])
def test_garbage_cursors_are_invalid_requests(cursor):
    with pytest.raises(InvalidRequest) as info:
        decode_page_cursor(cursor)
    assert str(info.value) == "cursor is not a cursor this service returned"
    assert info.value.field == "cursor"


def test_deeply_nested_json_cursor_is_an_invalid_request():
    # 1,334 characters fit in any query string; json.loads raises RecursionError (not ValueError)
    # on them, which would surface as a 500 instead of a 400.
    cursor = _b64(b"[" * 1000)
    with pytest.raises(InvalidRequest) as info:
        decode_page_cursor(cursor)
    assert info.value.field == "cursor"


# --- capping JSON lists ----------------------------------------------------------------------
def test_small_lists_are_kept_verbatim():
    value = ["a@contoso.com", "jürgen@contoso.de"]
    assert _cap(value) == '["a@contoso.com", "jürgen@contoso.de"]'
    assert _cap([]) == "[]"
    assert _cap(None) == "null"


def test_list_of_exactly_the_limit_is_kept():
    item = "x" * (MAX_JSON_UNITS - 4)  # ["..."] adds 4 characters
    assert len(_cap([item])) == MAX_JSON_UNITS
    assert json.loads(_cap([item])) == [item]


def test_long_lists_are_cut_to_a_prefix_under_the_limit():
    value = [f"recipient{i:05d}@contoso.com" for i in range(5000)]  # ~150,000 characters of JSON
    text = _cap(value)
    assert len(text) <= MAX_JSON_UNITS
    kept = json.loads(text)
    assert kept == value[:len(kept)]
    assert len(kept) == 625  # 5000 halved three times: 2500 and 1250 are still too long


def test_single_huge_entry_leaves_an_empty_list():
    assert _cap(["x" * 40_000]) == "[]"


def test_attachment_dicts_are_capped_too():
    value = [{"id": f"att{i}", "name": "report-" + "n" * 200 + ".pdf", "size": i, "blob": None}
             for i in range(400)]
    text = _cap(value)
    assert len(text) <= MAX_JSON_UNITS
    assert json.loads(text) == value[:len(json.loads(text))]


def test_capped_json_fits_a_table_string_property_with_emoji():
    # A Table string property is at most 64 KiB of UTF-16; characters outside the BMP take two
    # UTF-16 units each, so 30,000 Python characters of emoji are ~120 KB and Table refuses the row.
    value = ["\U0001F4CE" * 100 + f" {i}.pdf" for i in range(400)]
    text = _cap(value)
    assert len(text.encode("utf-16-le")) <= TABLE_STRING_LIMIT_BYTES
