"""storage.table_batch against real Azurite: what it writes reads back through the Tables SDK
exactly as if the SDK had written it, a second write replaces, and a refused transaction raises
with the service's message and writes nothing."""
from __future__ import annotations

import uuid

import pytest
from azure.data.tables import EdmType, EntityProperty, TableServiceClient

from mailextract.storage import table_batch


@pytest.fixture
def table(storage_connection_string):
    service = TableServiceClient.from_connection_string(storage_connection_string)
    name = f"batch{uuid.uuid4().hex[:12]}"
    client = service.create_table(name)
    yield client
    service.delete_table(name)


def _rows(table, partition: str) -> dict[str, dict]:
    return {e["RowKey"]: {k: v for k, v in e.items() if k not in ("PartitionKey", "RowKey")}
            for e in table.query_entities(f"PartitionKey eq '{partition.replace(chr(39), chr(39) * 2)}'")}


def test_a_full_transaction_reads_back_exactly(table):
    partition = "o'brien ü"
    entities = [{"PartitionKey": partition, "RowKey": f"AAMk%2F{i:03d} x'", "subject": f"Grüße 📬 \"{i}\"\r\n",
                 "is_read": i % 2 == 0, "body_offset": i * 40_000, "size": 2**40 + i, "score": i / 4,
                 "deleted_at": None} for i in range(table_batch.MAX_OPERATIONS)]
    assert table_batch.upsert(table, entities) == 100
    assert _rows(table, partition) == {
        e["RowKey"]: {"subject": e["subject"], "is_read": e["is_read"], "body_offset": e["body_offset"],
                      "size": EntityProperty(e["size"], EdmType.INT64), "score": e["score"]}
        for e in entities}


def test_a_second_write_replaces_the_whole_entity(table):
    table_batch.upsert(table, [{"PartitionKey": "p", "RowKey": "m1", "subject": "old", "folder": "Inbox"}])
    table_batch.upsert(table, [{"PartitionKey": "p", "RowKey": "m1", "subject": "new"},
                               {"PartitionKey": "p", "RowKey": "m2", "subject": "added"}])
    assert _rows(table, "p") == {"m1": {"subject": "new"}, "m2": {"subject": "added"}}


def test_a_refused_transaction_raises_the_service_message_and_writes_nothing(table):
    entities = [{"PartitionKey": "p", "RowKey": "m1", "subject": "a"},
                {"PartitionKey": "p", "RowKey": "m2", "subject": "b"},
                {"PartitionKey": "p", "RowKey": "m1", "subject": "twice"}]
    with pytest.raises(table_batch.TableTransactionFailed, match=r"refused with status 400: 2:.*RowKey 'm1'"):
        table_batch.upsert(table, entities)
    assert _rows(table, "p") == {}


def test_more_than_one_transaction_is_refused_before_sending(table):
    entities = [{"PartitionKey": "p", "RowKey": f"m{i}"} for i in range(101)]
    with pytest.raises(ValueError, match="at most 100 entities, not 101"):
        table_batch.upsert(table, entities)
    assert _rows(table, "p") == {}
    assert table_batch.upsert(table, []) == 0
