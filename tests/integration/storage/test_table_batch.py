"""storage.table_batch against real Azurite: what it writes reads back through the Tables SDK
exactly as if the SDK had written it, a second write replaces, and a refused transaction raises
with the service's message and writes nothing. A connection lost before the answer (played by a
small local endpoint: Azurite cannot be made to drop one) makes the same transaction go again."""
from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.data.tables import EdmType, EntityProperty, TableClient, TableServiceClient

from devhost.azurite import DEV_KEY
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


class DropsFirstConnections(BaseHTTPRequestHandler):
    """A Table endpoint whose first `drops` transactions lose their connection before any answer
    (what a pooled keep-alive connection closed by the server looks like), then answers each one,
    or refuses it whole when `refuse` is set."""
    drops, seen, refuse = 0, [], False

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append(body)
        if len(self.seen) <= self.drops:
            self.close_connection = True
            return
        if self.refuse:
            answer = b'{"odata.error":{"code":"InvalidInput","message":{"lang":"en-US","value":"Bad batch."}}}'
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
        else:
            answer = b"".join(b"--changesetresponse_1\r\nContent-Type: application/http\r\n\r\n"
                              b"HTTP/1.1 204 No Content\r\n\r\n" for _ in range(body.count(b"\r\nPUT ")))
            self.send_response(202)
            self.send_header("Content-Type", "multipart/mixed; boundary=batchresponse_1")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def dropping_endpoint():
    def serve(drops: int, refuse: bool = False) -> tuple[TableClient, list[bytes]]:
        DropsFirstConnections.drops, DropsFirstConnections.seen, DropsFirstConnections.refuse = drops, [], refuse
        server = HTTPServer(("127.0.0.1", 0), DropsFirstConnections)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        port = server.server_address[1]
        client = TableClient.from_connection_string(
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
            f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;", "MailMessages")
        return client, DropsFirstConnections.seen
    servers = []
    yield serve
    for server in servers:
        server.shutdown()


def test_a_transaction_whose_connection_dropped_is_sent_again(dropping_endpoint):
    table, seen = dropping_endpoint(drops=2)
    entities = [{"PartitionKey": "p", "RowKey": f"m{i}", "subject": "s"} for i in range(3)]
    assert table_batch.upsert(table, entities) == 3
    assert len(seen) == 3 and seen[0] == seen[1] == seen[2]  # the same transaction, whole each time


def test_a_connection_that_keeps_dropping_is_an_error_after_the_last_attempt(dropping_endpoint):
    table, seen = dropping_endpoint(drops=table_batch.SEND_ATTEMPTS)
    with pytest.raises(ServiceResponseError):
        table_batch.upsert(table, [{"PartitionKey": "p", "RowKey": "m1"}])
    assert len(seen) == table_batch.SEND_ATTEMPTS


def test_a_transaction_on_a_missing_table_raises_the_service_message(storage_connection_string):
    missing = TableServiceClient.from_connection_string(storage_connection_string).get_table_client(
        f"missing{uuid.uuid4().hex[:12]}")
    with pytest.raises(table_batch.TableTransactionFailed) as failed:
        table_batch.upsert(missing, [{"PartitionKey": "p", "RowKey": "m1"}])
    assert "404" in failed.value.message and "table" in failed.value.message.lower()


def test_a_transaction_refused_whole_raises_the_status_and_message(dropping_endpoint):
    table, seen = dropping_endpoint(drops=0, refuse=True)
    with pytest.raises(table_batch.TableTransactionFailed) as failed:
        table_batch.upsert(table, [{"PartitionKey": "p", "RowKey": "m1"}])
    assert failed.value.message == ("Table transaction on 'MailMessages' failed: "
                                    "the transaction was answered 400: Bad batch.")
    assert len(seen) == 1  # an answer, even a refusal, is never sent again
