"""devhost's durable store against Azurite: rows that another writer deleted first."""
from __future__ import annotations

import asyncio
import uuid

from devhost.durable.store import DurableStore, message_key


def test_a_purge_racing_an_episode_that_retired_some_of_the_rows_deletes_the_rest(storage_connection_string):
    """A finished instance's late messages are retired by an episode while the instance is purged:
    whichever deletes a row second must not fail (the API's purge answered 500 before)."""
    async def scenario() -> tuple[int, list[str]]:
        store = DurableStore(storage_connection_string, f"storetest{uuid.uuid4().hex[:8]}")
        await store.open()
        try:
            instance = "finished-1"
            await store.table.upsert_entity(await store.entity(instance, "I", {"runtimeStatus": "Completed"}))
            keys = [message_key(1_000 + n) for n in range(150)]  # two transactions' worth
            for key in keys:
                await store.table.upsert_entity(await store.entity(instance, key, {"n": key}))
            await store.delete_rows(instance, [keys[5], keys[120]])  # the episode, first
            purged = await store.purge(instance)
            left = [e["RowKey"] async for e in store.table.query_entities(f"PartitionKey eq '{instance}'")]
            await store.delete_rows(instance, keys[:3])  # and the episode again, after the purge
            return purged, left
        finally:
            await store.table.delete_table()
            await store.close()
    assert asyncio.run(scenario()) == (1, [])
