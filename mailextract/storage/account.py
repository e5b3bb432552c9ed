"""Storage clients, created on first use and cached per process (never at import time: the
Functions worker imports the app to index it). Tables and containers are created once per
process, the first time a store asks for them."""
from __future__ import annotations

import os
import threading
import urllib.request

import requests
from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient

from mailextract.errors import SettingsError
from mailextract.settings import Settings, get_settings

_lock = threading.Lock()
_tables: dict[tuple[str, str], TableClient] = {}
_containers: dict[tuple[str, str], ContainerClient] = {}
_services: dict[str, tuple[TableServiceClient, BlobServiceClient]] = {}


def _connection(settings: Settings | None) -> str:
    value = (settings or get_settings()).azure_web_jobs_storage
    if not value:
        raise SettingsError("AzureWebJobsStorage", "is not set")
    return value


POOL_SIZE = 32  # more than the blob upload threads (mail_blobs), so connections are reused


def _transport() -> RequestsTransport:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if urllib.request.getproxies():  # requests matches NO_PROXY per URL: leave it to do so
        return RequestsTransport(session=session, session_owner=False)
    # Read requests' environment settings (CA bundle, netrc, proxies) once, not on every call:
    # with trust_env on, requests walks os.environ and looks for a netrc file per request, several
    # % of the process's CPU in a batch, for storage calls that need none of it. App settings do
    # not change within a process. The CA bundle goes to the transport, which passes it per call.
    session.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return RequestsTransport(session=session, session_owner=False, connection_verify=bundle or True)


def _service(connection: str) -> tuple[TableServiceClient, BlobServiceClient]:
    if connection not in _services:
        _services[connection] = (TableServiceClient.from_connection_string(connection, transport=_transport()),
                                 BlobServiceClient.from_connection_string(connection, transport=_transport()))
    return _services[connection]


def table(name: str, settings: Settings | None = None) -> TableClient:
    connection = _connection(settings)
    with _lock:
        client = _tables.get((connection, name))
        if client is None:
            service = _service(connection)[0]
            try:
                service.create_table(name)
            except ResourceExistsError:
                pass
            client = _tables[(connection, name)] = service.get_table_client(name)
        return client


def container(name: str, settings: Settings | None = None) -> ContainerClient:
    connection = _connection(settings)
    with _lock:
        client = _containers.get((connection, name))
        if client is None:
            client = _service(connection)[1].get_container_client(name)
            try:
                client.create_container()
            except ResourceExistsError:
                pass
            _containers[(connection, name)] = client
        return client
