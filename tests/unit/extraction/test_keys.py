"""Connection ids (validated) and Graph ids (encoded reversibly) as Table keys and blob names."""
import random
import re

import pytest

from mailextract.errors import InvalidRequest
from mailextract.storage.keys import decode, encode, odata_literal, validate_connection_id

FORBIDDEN_IN_KEYS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")  # storage.md: PartitionKey/RowKey rules
FORBIDDEN_MESSAGE = "connection_id must not contain '/', '\\', '#', '?' or control characters"


def _invalid(value, **kwargs) -> str:
    with pytest.raises(InvalidRequest) as info:
        validate_connection_id(value, **kwargs)
    return str(info.value)


# --- connection ids --------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["c1", "mailbox-2024.export_1", "a b", "100%", "O'Brien", "Überprüfung-📬",
                                   "受信トレイ", "Batch_1", "my batch_1", "x" * 256, "ü" * 256])
def test_valid_connection_ids_are_returned_unchanged(value):
    assert validate_connection_id(value) == value


def test_connection_id_of_257_characters_is_rejected():
    assert _invalid("x" * 257) == "connection_id must be at most 256 characters"
    assert _invalid("ü" * 257) == "connection_id must be at most 256 characters"


@pytest.mark.parametrize("value", [None, "", "   ", 12, ["c1"]])
def test_empty_or_non_string_connection_id(value):
    assert _invalid(value) == "connection_id must be a non-empty string"


@pytest.mark.parametrize("char", ["/", "\\", "#", "?", "\x00", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f",
                                  "\x80", "\x85", "\x9f"])
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_each_forbidden_character_is_rejected(char, where):
    value = {"start": char + "abc", "middle": "ab" + char + "c", "end": "abc" + char}[where]
    assert _invalid(value) == FORBIDDEN_MESSAGE


def test_every_control_character_is_rejected():
    for code in [*range(0x00, 0x20), *range(0x7F, 0xA0)]:
        assert _invalid(f"a{chr(code)}b") == FORBIDDEN_MESSAGE, hex(code)


@pytest.mark.parametrize("value", [" c1", "c1 ", "  c1  ", "\u00a0c1"])
def test_leading_or_trailing_spaces_are_rejected(value):
    assert _invalid(value) == "connection_id must not start or end with spaces"


def test_batch_prefix_is_reserved():
    assert _invalid("batch_1") == "connection_id must not start with 'batch_' (reserved for batches)"
    assert _invalid("batch_") == "connection_id must not start with 'batch_' (reserved for batches)"
    assert validate_connection_id("batch_abc-0001", allow_reserved=True) == "batch_abc-0001"


def test_reserved_ids_still_obey_the_other_rules():
    assert _invalid("batch_a/b", allow_reserved=True) == FORBIDDEN_MESSAGE
    assert _invalid("batch_" + "x" * 251, allow_reserved=True) == "connection_id must be at most 256 characters"


def test_invalid_connection_id_error_code():
    with pytest.raises(InvalidRequest) as info:
        validate_connection_id("a/b")
    assert info.value.to_dict() == {"code": "invalid_request", "message": FORBIDDEN_MESSAGE}


# --- encode / decode -------------------------------------------------------------------------
@pytest.mark.parametrize("value, encoded", [
    ("AAMkAGI2TG93AAA=", "AAMkAGI2TG93AAA="),
    ("a/b", "a%2Fb"),
    ("a\\b", "a%5Cb"),
    ("#1?x", "%231%3Fx"),
    ("100%", "100%25"),
    ("%2F", "%252F"),
    ("\x00\x1f\x7f\x9f", "%00%1F%7F%9F"),
    ("Überprüfung 📬", "Überprüfung 📬"),
    ("", ""),
])
def test_encode_exact(value, encoded):
    assert encode(value) == encoded
    assert decode(encoded) == value


@pytest.mark.parametrize("value", [
    "%", "%%", "%%%", "%4", "%41", "%zz", "%2f", "%2F%2f", "a%25b", "%%41", "%0A\n", "/%/", "\\%5C",
    "%\u00e9", "100% /done?#", "\x9f%9F", "%" * 50 + "/" * 50,
])
def test_round_trip_of_tricky_strings(value):
    assert decode(encode(value)) == value
    assert not FORBIDDEN_IN_KEYS.search(encode(value))


def test_round_trip_of_every_single_character_up_to_0x3000():
    for code in range(0x3000):
        value = chr(code)
        encoded = encode(value)
        assert decode(encoded) == value, hex(code)
        assert not FORBIDDEN_IN_KEYS.search(encoded), hex(code)


def test_round_trip_of_random_strings():
    rng = random.Random(20240601)
    alphabet = ("%/\\#?'\"" "0123456789ABCDEFabcdef" "\x00\x01\x1f\x7f\x80\x9f\xa0" "éÜß漢字"
                "\U0001F4EC\U0001F600" " =+-_.")
    for _ in range(5000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        encoded = encode(value)
        assert decode(encoded) == value, repr(value)
        assert not FORBIDDEN_IN_KEYS.search(encoded), repr(value)


def test_encoding_is_injective_on_lookalikes():
    values = ["a/b", "a%2Fb", "a%252Fb", "a%2fb"]
    assert len({encode(v) for v in values}) == len(values)


# --- OData literals --------------------------------------------------------------------------
@pytest.mark.parametrize("value, literal", [
    ("c1", "'c1'"),
    ("", "''"),
    ("O'Brien", "'O''Brien'"),
    ("''", "''''''"),
    ("x' or PartitionKey ne '", "'x'' or PartitionKey ne '''"),
])
def test_odata_literal_doubles_quotes(value, literal):
    assert odata_literal(value) == literal
