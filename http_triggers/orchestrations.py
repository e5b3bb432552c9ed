"""The durable client adapted to mailextract's Orchestrations port.

The SDK client reports everything as a plain Exception with the extension's message; this
turns "no such instance" into InstanceNotFound and treats operations on instances that have
already finished as done, so the service can speak in its own terms.
"""
from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from mailextract.errors import InstanceNotFound, JobConflict
from mailextract.operations.jobs import STILL_STOPPING


class DurableOrchestrations:
    def __init__(self, client: df.DurableOrchestrationClient):
        self.client = client

    async def start(self, orchestrator: str, instance_id: str, payload: dict[str, Any]) -> None:
        await self.client.start_new(orchestrator, instance_id, payload)

    async def runtime_status(self, instance_id: str) -> str | None:
        """The instance's runtime status (Running, Completed...); None when there is no such instance."""
        status = await self.client.get_status(instance_id)
        return status.runtime_status.value if status.runtime_status else None

    async def raise_event(self, instance_id: str, name: str, payload: Any = None) -> None:
        try:
            await self.client.raise_event(instance_id, name, payload)
        except Exception as exc:
            if "No instance with ID" in str(exc):
                raise InstanceNotFound(str(exc)) from None
            if "is gone" not in str(exc):  # finished meanwhile: nothing left to wake
                raise

    async def terminate(self, instance_id: str, reason: str) -> None:
        try:
            await self.client.terminate(instance_id, reason)
        except Exception as exc:
            if "No instance with ID" not in str(exc):
                raise

    async def purge(self, instance_id: str) -> int:
        """Delete a finished instance's history: the count deleted, 0 when there is no such instance.

        The extension refuses to purge an orchestration that is not Completed, Failed, Terminated or
        Canceled with 412 (Durable 3.9.1+, HttpApiHandler.HandleDeleteHistoryByIdRequestAsync), which
        the SDK raises as "unexpected status code 412": a run completing, or a terminate not yet
        processed, ends a moment later, so that is a conflict the caller waits out. Older versions do
        not refuse (they purge a running instance), which is why the caller reads the status first
        (mailextract/operations/jobs.py, docs/durable-host.md)."""
        try:
            return (await self.client.purge_instance_history(instance_id)).instances_deleted
        except Exception as exc:
            if "unexpected status code 412" in str(exc):
                raise JobConflict(STILL_STOPPING) from None
            raise

    async def probe(self) -> None:
        """One status read of an instance that does not exist: fails when the backend is down."""
        await self.client.get_status("health-probe-no-such-instance")
