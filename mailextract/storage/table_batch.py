"""Entity-group transactions of upserts (insert-or-replace), encoded here rather than by
azure-data-tables' `submit_transaction`.

Why: the SDK builds every transaction through azure-core's multipart support (the `email`
package, with a thread pool mapping policies over the parts) and parses the answer the same
way. Storing a page of 100 messages is one such transaction, and profiling a run put 40 % of
the process's CPU there (bench/README.md), more than fetching and decoding the page itself.
The request is plain text, written here in one pass and sent through the TableClient's own
pipeline, so authentication (shared key or Entra ID), retries, headers and the API version
stay the SDK's. The SDK has no public method to send a prepared request: `_client.send_request`
is the call its own `submit_transaction` makes; the integration tests run it against Azurite.

Format (Microsoft's "Performing entity group transactions"): `POST {account}/$batch`, a
multipart/mixed batch holding one changeset; each operation is
`PUT {table}(PartitionKey='..',RowKey='..')` with the entity as JSON, which inserts the entity or
replaces it whole. The answer lists one `HTTP/1.1 2xx` per operation, or a single part carrying
the status and OData error of the operation that failed (nothing is then written).

Property types follow the SDK's: str, bool, int (Edm.Int64 beyond 32 bits, which the SDK would
refuse), float (Edm.Double); None leaves the property out.
"""
from __future__ import annotations

import json
import math
import re
import uuid
from typing import Any, Iterable, Iterator, TypeVar
from urllib.parse import quote

from azure.core.exceptions import (HttpResponseError, IncompleteReadError, ServiceRequestError,
                                   ServiceResponseError)
from azure.core.rest import HttpRequest
from azure.data.tables import TableClient

MAX_OPERATIONS = 100  # storage.md: at most 100 entities per transaction
# The pipeline's retry policy never resends a POST whose connection failed (a POST need not be
# idempotent), and a pooled keep-alive connection the server has just closed fails exactly so.
# Insert-or-replace of the same entities is idempotent: sent again, up to this many times in all.
SEND_ATTEMPTS = 3
_STATUS_LINE = re.compile(rb"^HTTP/1\.1 (\d{3})", re.MULTILINE)
_INT32 = range(-2**31, 2**31)
_NOT_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # OData's spelling, as the SDK's


T = TypeVar("T")


def transactions(items: list[T]) -> Iterator[list[T]]:
    """Consecutive slices of `items` that each fit one transaction."""
    for start in range(0, len(items), MAX_OPERATIONS):
        yield items[start:start + MAX_OPERATIONS]


class TableTransactionFailed(HttpResponseError):
    """The service refused the transaction; nothing of it was written."""


def _key(value: str) -> str:
    return quote(value.replace("'", "''"), safe="")


def _property(name: str, value: Any, out: dict[str, Any]) -> None:
    if value is None:
        return
    if isinstance(value, (bool, str)):
        out[name] = value
    elif isinstance(value, int):
        if value in _INT32:
            out[name] = value
        else:
            out[name], out[f"{name}@odata.type"] = str(value), "Edm.Int64"
    elif isinstance(value, float):
        out[name] = value if math.isfinite(value) else _NOT_FINITE[str(value)]
        out[f"{name}@odata.type"] = "Edm.Double"
    else:
        raise TypeError(f"property '{name}': type {type(value).__name__} is not stored by table_batch")


def entity_json(entity: dict[str, Any]) -> str:
    body: dict[str, Any] = {}
    for name, value in entity.items():
        _property(name, value, body)
    return json.dumps(body, ensure_ascii=False)


def upsert_body(entity_url: str, entities: list[dict[str, Any]], batch: str, changeset: str) -> bytes:
    """The multipart body of one transaction replacing (or inserting) `entities`."""
    parts = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"]
    for number, entity in enumerate(entities):
        content = entity_json(entity).encode("utf-8")
        parts.append(
            f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: {number}\r\n\r\n"
            f"PUT {entity_url}(PartitionKey='{_key(entity['PartitionKey'])}',RowKey='{_key(entity['RowKey'])}')"
            f" HTTP/1.1\r\nContent-Type: application/json\r\nAccept: application/json;odata=nometadata\r\n"
            f"Prefer: return-no-content\r\nDataServiceVersion: 3.0\r\nContent-Length: {len(content)}\r\n\r\n")
        parts.append(content)
        parts.append("\r\n")
    parts.append(f"--{changeset}--\r\n\r\n--{batch}--\r\n")
    return b"".join(p if isinstance(p, bytes) else p.encode("utf-8") for p in parts)


def failure(body: bytes, operations: int) -> str | None:
    """What went wrong according to a transaction's answer, or None when every operation succeeded."""
    statuses = [int(s) for s in _STATUS_LINE.findall(body)]
    refused = next((s for s in statuses if not 200 <= s < 300), None)
    if refused is None and len(statuses) == operations:
        return None
    if refused is None:
        return f"the answer lists {len(statuses)} of {operations} operations"
    return f"an operation was refused with status {refused}: {error_message(body)}"


def error_message(body: bytes) -> str:
    """The message of the OData error in an answer (`odata.error.message.value`)."""
    match = re.search(rb'"value"\s*:\s*"((?:[^"\\]|\\.)*)"', body)
    return json.loads(b'"' + match.group(1) + b'"') if match else "no error message"


def upsert(table: TableClient, entities: Iterable[dict[str, Any]]) -> int:
    """Insert or replace `entities` (one partition, at most 100) in one transaction; their count."""
    entities = list(entities)
    if not entities:
        return 0
    if len(entities) > MAX_OPERATIONS:
        raise ValueError(f"a transaction holds at most {MAX_OPERATIONS} entities, not {len(entities)}")
    account_url, _, query = table.url.partition("?")
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    content = upsert_body(f"{account_url}/{quote(table.table_name)}", entities, batch, changeset)
    for attempt in range(SEND_ATTEMPTS):
        request = HttpRequest(
            "POST", f"{account_url}/$batch" + (f"?{query}" if query else ""),
            headers={"Content-Type": f"multipart/mixed; boundary={batch}", "Accept": "application/json",
                     "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx"},
            content=content)
        try:
            # stream=True: the pipeline would otherwise try to decode the multipart answer as JSON
            response = table._client.send_request(request, stream=True)  # pylint: disable=protected-access
            body = response.read()
            break
        except (ServiceRequestError, ServiceResponseError, IncompleteReadError):
            if attempt == SEND_ATTEMPTS - 1:
                raise
    problem = (failure(body, len(entities)) if response.status_code == 202
               else f"the transaction was answered {response.status_code}: {error_message(body)}")
    if problem:
        raise TableTransactionFailed(message=f"Table transaction on '{table.table_name}' failed: {problem}",
                                     response=response)
    return len(entities)
