"""The entity-group transaction encoding of storage.table_batch, read back with the standard
library's own multipart parser (an independent reader of the same format)."""
import email
import email.policy
import json

import pytest

from mailextract.storage.table_batch import entity_json, failure, upsert_body

URL = "https://acct.table.core.windows.net/MailMessages"


def _operations(body: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    """(request line, headers, entity bytes) of each operation in a batch body."""
    batch = email.message_from_bytes(b"Content-Type: multipart/mixed; boundary=batch_1\r\n\r\n" + body,
                                     policy=email.policy.HTTP)
    [changeset] = batch.get_payload()
    assert changeset.get_content_type() == "multipart/mixed"
    operations = []
    for part in changeset.get_payload():
        assert part.get_content_type() == "application/http"
        assert part["Content-Transfer-Encoding"] == "binary"
        head, _, content = part.get_payload(decode=True).partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in header_lines)
        operations.append((request_line, headers, content))
    return operations


def test_each_entity_is_one_insert_or_replace_with_its_exact_json():
    entities = [{"PartitionKey": "conn-1", "RowKey": f"id{i}", "subject": f"s{i}"} for i in range(3)]
    operations = _operations(upsert_body(URL, entities, "batch_1", "changeset_1"))
    assert [line for line, _, _ in operations] == [
        f"PUT {URL}(PartitionKey='conn-1',RowKey='id{i}') HTTP/1.1" for i in range(3)]
    for (_, headers, content), entity in zip(operations, entities):
        assert json.loads(content) == entity
        assert int(headers["Content-Length"]) == len(content)
        assert headers["Content-Type"] == "application/json"


def test_keys_are_quoted_and_percent_encoded_in_the_url_and_kept_whole_in_the_entity():
    entity = {"PartitionKey": "o'brien ü", "RowKey": "AAMk%2F x'y", "subject": "Grüße 📬 \"quoted\"\r\n"}
    [(line, headers, content)] = _operations(upsert_body(URL, [entity], "batch_1", "changeset_1"))
    assert line == f"PUT {URL}(PartitionKey='o%27%27brien%20%C3%BC',RowKey='AAMk%252F%20x%27%27y') HTTP/1.1"
    assert json.loads(content.decode("utf-8")) == entity
    assert int(headers["Content-Length"]) == len(content)  # bytes, not characters


def test_property_types_follow_the_tables_sdk():
    assert json.loads(entity_json({"s": "x", "b": True, "i": 7, "n": None, "f": 1.5, "big": 2**40})) == {
        "s": "x", "b": True, "i": 7, "f": 1.5, "f@odata.type": "Edm.Double",
        "big": str(2**40), "big@odata.type": "Edm.Int64"}
    assert json.loads(entity_json({"nan": float("nan")})) == {"nan": "NaN", "nan@odata.type": "Edm.Double"}
    with pytest.raises(TypeError, match="'when'"):
        entity_json({"when": object()})


def _answer(*parts: bytes) -> bytes:
    return b"".join(b"--changesetresponse_1\r\nContent-Type: application/http\r\n\r\n" + p + b"\r\n"
                    for p in parts) + b"--changesetresponse_1--\r\n"


def test_an_answer_with_every_operation_done_is_no_failure():
    done = b"HTTP/1.1 204 No Content\r\nDataServiceVersion: 3.0;\r\n"
    assert failure(_answer(done, done), 2) is None


def test_a_refused_operation_is_reported_with_its_status_and_the_service_message():
    refused = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n"
               b'{"odata.error":{"code":"InvalidDuplicateRow","message":{"lang":"en-US",'
               b'"value":"1:The batch request contains multiple changes with same row key. \\"x\\""}}}')
    assert failure(_answer(refused), 2) == (
        'an operation was refused with status 400: 1:The batch request contains multiple changes '
        'with same row key. "x"')


def test_an_answer_missing_operations_is_a_failure():
    done = b"HTTP/1.1 204 No Content\r\n"
    assert failure(_answer(done), 2) == "the answer lists 1 of 2 operations"
