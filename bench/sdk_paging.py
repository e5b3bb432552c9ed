"""Pages a graphsim mailbox with Microsoft's msgraph-sdk page iterator.

Why: the throughput benchmark compares our paging against "Microsoft's msgraph-sdk page iterator"
(GraphServiceClient + msgraph_core's PageIterator, one page at a time); this is that comparison point.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx
from azure.core.credentials import AccessToken
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.messages.messages_request_builder import MessagesRequestBuilder
from msgraph_core import GraphClientFactory
from msgraph_core.tasks.page_iterator import PageIterator

if TYPE_CHECKING:
    from graphsim.testing import GraphSim

PREFER_IMMUTABLE_IDS = 'IdType="ImmutableId"'


class _SimCredential:
    """Minimal azure.core AsyncTokenCredential: a simulator token, fetched again shortly before it expires."""

    def __init__(self, fetch: Callable[[], str], lifetime_s: float) -> None:
        self._fetch = fetch
        self._lifetime_s = lifetime_s
        self._token = self._new_token(fetch())

    def _new_token(self, token: str) -> AccessToken:
        return AccessToken(token, int(time.time() + self._lifetime_s))

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if self._token.expires_on - time.time() < min(60.0, self._lifetime_s / 2):
            self._token = self._new_token(await asyncio.to_thread(self._fetch))
        return self._token

    async def close(self) -> None:
        return None


def page_with_msgraph_sdk(sim: GraphSim, upn: str, page_size: int, select: list[str],
                          limit: int | None = None) -> tuple[int, float]:
    """Page the messages of `upn` (GET /users/{upn}/messages, $top=page_size, $select=select,
    header Prefer: IdType="ImmutableId") with msgraph-sdk's GraphServiceClient and msgraph_core's
    PageIterator, one page at a time as the SDK does, stopping after `limit` messages (None: all);
    return (messages counted, seconds elapsed)."""
    return asyncio.run(_page(sim, upn, page_size, select, limit))


async def _page(sim: GraphSim, upn: str, page_size: int, select: list[str],
                limit: int | None) -> tuple[int, float]:
    credential = _SimCredential(sim.access_token, sim.faults()["token_lifetime_s"])
    auth = AzureIdentityAuthenticationProvider(credential, allowed_hosts=[urlparse(sim.graph_endpoint).hostname])
    http_client = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=sim.ca_bundle, timeout=httpx.Timeout(60.0)))
    try:
        adapter = GraphRequestAdapter(auth, client=http_client)
        adapter.base_url = f"{sim.graph_endpoint}/v1.0"
        client = GraphServiceClient(request_adapter=adapter)
        config = RequestConfiguration(query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            top=page_size, select=list(select)))
        config.headers.add("Prefer", PREFER_IMMUTABLE_IDS)
        count = 0

        def on_message(_message: Any) -> bool:
            nonlocal count
            count += 1
            return limit is None or count < limit

        Message().get_field_deserializers()  # one-time lazy import of ~1,200 model modules (~1 s): not paging
        started = time.perf_counter()
        first_page = await client.users.by_user_id(upn).messages.get(request_configuration=config)
        if first_page is None:
            raise RuntimeError(f"no response listing the messages of {upn}")
        iterator = PageIterator(first_page, adapter, error_mapping={"XXX": ODataError})
        # PageIterator sends none of the first request's headers on nextLink requests, and its
        # set_headers() calls HeadersCollection.add_all(**headers), which raises TypeError: add directly.
        iterator.headers.add("Prefer", PREFER_IMMUTABLE_IDS)
        await iterator.iterate(on_message)
        return count, time.perf_counter() - started
    finally:
        await http_client.aclose()
