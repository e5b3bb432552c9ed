"""Request bodies and query parameters of the extraction API: a clear 400 naming the field."""
import pytest

from mailextract.errors import InvalidRequest
from mailextract.extraction.requests import BatchStartRequest, StartRequest, page_limit
from mailextract.validation import validate_address
from mailextract.jobs import ExtractionOptions


def _raises(fn, *args, **kwargs) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        fn(*args, **kwargs)
    return info.value


# --- addresses -------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("user@contoso.com", "user@contoso.com"),
    ("  First.Last+tag@mail.contoso.co.uk  ", "First.Last+tag@mail.contoso.co.uk"),
    ("o.brien-x_1@sub-domain.example.org", "o.brien-x_1@sub-domain.example.org"),
    ("jürgen@contoso.de", "jürgen@contoso.de"),
])
def test_valid_addresses_are_returned_stripped(value, expected):
    assert validate_address(value, "user_upn") == expected


@pytest.mark.parametrize("value", [None, "", "   ", 42, ["a@b.com"]])
def test_missing_address(value):
    err = _raises(validate_address, value, "user_upn")
    assert str(err) == "user_upn is required and must be an email address"
    assert err.field == "user_upn"


@pytest.mark.parametrize("value", [
    "not-an-email", "user@localhost", "a@b.c", "two@@contoso.com", "a b@contoso.com", "user@contoso com",
    "<user@contoso.com>", "user@contoso.com;other@contoso.com", "user@con_toso.com", "@contoso.com",
])
def test_malformed_addresses(value):
    err = _raises(validate_address, value, "user_upn")
    assert str(err) == f"user_upn is not an email address: {value!r}"
    assert err.field == "user_upn"


def test_overlong_address_is_rejected_and_quoted_only_in_part():
    value = "a" * 310 + "@contoso.com"  # 322 characters
    err = _raises(validate_address, value, "user_upn")
    assert str(err) == f"user_upn is not an email address: {'a' * 100!r}"


def test_address_of_exactly_320_characters_is_accepted():
    value = "a" * 308 + "@contoso.com"
    assert len(value) == 320
    assert validate_address(value, "user_upn") == value


# --- single start ----------------------------------------------------------------------------
def test_start_request_parsed():
    req = StartRequest.parse({"user_upn": " alice@contoso.com ", "config": {"tenant_id": "t"},
                              "options": {"folders": ["Inbox"], "body_format": "text"}})
    assert req == StartRequest("alice@contoso.com", {"tenant_id": "t"},
                               ExtractionOptions(folders=("Inbox",), body_format="text"))


def test_start_request_without_config_or_options():
    assert StartRequest.parse({"user_upn": "alice@contoso.com"}) == StartRequest(
        "alice@contoso.com", None, ExtractionOptions())


@pytest.mark.parametrize("body", [None, [], "alice@contoso.com", 3])
def test_body_must_be_an_object(body):
    err = _raises(StartRequest.parse, body)
    assert str(err) == "the request body must be a JSON object"
    assert err.field is None


def test_unknown_fields_are_named():
    err = _raises(StartRequest.parse, {"user_upn": "alice@contoso.com", "userUpn": "x", "folders": []})
    assert str(err) == "unknown field(s): folders, userUpn; expected config, options, user_upn"


@pytest.mark.parametrize("config", ["secret", ["a"], 1])
def test_config_must_be_an_object(config):
    err = _raises(StartRequest.parse, {"user_upn": "alice@contoso.com", "config": config})
    assert str(err) == "config must be an object"
    assert err.field == "config"


def test_missing_user_upn():
    err = _raises(StartRequest.parse, {"options": {}})
    assert str(err) == "user_upn is required and must be an email address"
    assert err.field == "user_upn"


def test_bad_options_in_start_request_name_the_option():
    err = _raises(StartRequest.parse, {"user_upn": "alice@contoso.com",
                                       "options": {"received_after": "2024-05-01", "received_before": "2024-04-01"}})
    assert err.field == "options.received_after"


# --- batch start -----------------------------------------------------------------------------
def test_batch_request_parsed_in_order():
    req = BatchStartRequest.parse({"user_upns": ["b@contoso.com", " a@contoso.com"],
                                   "options": {"include_attachments": True}})
    assert req.user_upns == ("b@contoso.com", "a@contoso.com")
    assert req.config is None
    assert req.options == ExtractionOptions(include_attachments=True)


@pytest.mark.parametrize("users", [None, [], "a@contoso.com", {"a@contoso.com": 1}])
def test_batch_needs_a_non_empty_list(users):
    body = {} if users is None else {"user_upns": users}
    err = _raises(BatchStartRequest.parse, body)
    assert str(err) == "user_upns must be a non-empty list of email addresses"
    assert err.field == "user_upns"


def test_batch_of_1000_users_is_accepted():
    users = [f"user{i}@contoso.com" for i in range(1000)]
    assert BatchStartRequest.parse({"user_upns": users}).user_upns == tuple(users)


def test_batch_of_1001_users_is_rejected():
    users = [f"user{i}@contoso.com" for i in range(1001)]
    err = _raises(BatchStartRequest.parse, {"user_upns": users})
    assert str(err) == "user_upns has 1001 entries; at most 1000 per batch"
    assert err.field == "user_upns"


def test_batch_names_the_bad_entry_by_index():
    err = _raises(BatchStartRequest.parse, {"user_upns": ["a@contoso.com", "b@contoso.com", "nope"]})
    assert str(err) == "user_upns[2] is not an email address: 'nope'"
    assert err.field == "user_upns[2]"
    err = _raises(BatchStartRequest.parse, {"user_upns": ["a@contoso.com", None]})
    assert str(err) == "user_upns[1] is required and must be an email address"
    assert err.field == "user_upns[1]"


def test_duplicates_differing_only_in_case_are_named():
    err = _raises(BatchStartRequest.parse, {"user_upns": [
        "Alice@Contoso.com", "bob@contoso.com", "alice@contoso.com", "carol@contoso.com", "BOB@CONTOSO.COM"]})
    assert str(err) == ("user_upns lists these more than once: "
                        "Alice@Contoso.com, BOB@CONTOSO.COM, alice@contoso.com, bob@contoso.com")
    assert err.field == "user_upns"


def test_exact_and_whitespace_duplicates_are_named_once():
    err = _raises(BatchStartRequest.parse, {"user_upns": ["a@contoso.com", " a@contoso.com ", "b@contoso.com"]})
    assert str(err) == "user_upns lists these more than once: a@contoso.com"


def test_batch_rejects_single_user_field():
    err = _raises(BatchStartRequest.parse, {"user_upn": "a@contoso.com"})
    assert str(err) == "unknown field(s): user_upn; expected config, options, user_upns"


# --- page limit ------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, expected", [(None, 100), ("", 100), ("1", 1), ("100", 100), ("1000", 1000),
                                           ("42", 42), (" 7 ", 7)])
def test_page_limit_values(raw, expected):
    assert page_limit(raw) == expected


@pytest.mark.parametrize("raw", ["0", "1001", "-1", "abc", "1.5", "1e3", "10abc", "99999999999999999999"])
def test_page_limit_out_of_range_or_not_a_number(raw):
    err = _raises(page_limit, raw)
    assert str(err) == "limit must be an integer from 1 to 1000"
    assert err.field == "limit"
