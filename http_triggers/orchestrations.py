"""The durable client adapted to mailextract's Orchestrations port.

The SDK client reports everything as a plain Exception with the extension's message; this
turns "no such instance" into InstanceNotFound and treats operations on instances that have
already finished as done, so the service can speak in its own terms.
"""
from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from mailextract.errors import InstanceNotFound, JobConflict


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
        """Delete a finished instance's history; 0 when there is none.

        Right after a cancel the orchestration may still be stopping and the runtime refuses to
        purge it: that is a conflict the caller can retry in a moment."""
        try:
            return (await self.client.purge_instance_history(instance_id)).instances_deleted
        except Exception as exc:
            if "unexpected status code 400" in str(exc):
                raise JobConflict("the run's orchestration is still stopping; try again in a few seconds") from None
            raise

    async def probe(self) -> None:
        """One status read of an instance that does not exist: fails when the backend is down."""
        await self.client.get_status("health-probe-no-such-instance")
