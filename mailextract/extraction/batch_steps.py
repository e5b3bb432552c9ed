"""The batch orchestration's own steps: the gate it passes before starting more runs, and
its end. The runs themselves are single-mailbox runs (steps.py)."""
from __future__ import annotations

from typing import Any

from mailextract import jobs as J
from mailextract.run_log import log_event
from mailextract.settings import Settings, get_settings
from mailextract.storage.jobs import JobStore
from mailextract.vault import CredentialVault


class BatchSteps:
    def __init__(self, *, settings: Settings | None = None, jobs: JobStore | None = None,
                 vault: CredentialVault | None = None):
        self.settings = settings or get_settings()
        self.jobs = jobs or JobStore(self.settings)
        self.vault = vault or CredentialVault(self.settings)

    def gate(self, batch_id: str) -> dict[str, Any]:
        """The batch's status and pause cycle; a pending batch becomes in_progress here."""
        def mutate(row: dict[str, Any]):
            if row["status"] != J.PENDING:
                return False
            row.update(status=J.IN_PROGRESS, updated_at=J.utcnow_iso())
            log_event("batch.started", batch_id=batch_id, users=row.get("user_count"))
        row = self.jobs.update_batch(batch_id, mutate)
        if row is None:
            return {"status": J.CANCELLED, "cycle": 0}
        return {"status": row["status"], "cycle": row.get("cycle", 0)}

    def finish(self, batch_id: str) -> dict[str, Any]:
        def mutate(row: dict[str, Any]):
            if row["status"] not in J.ACTIVE:
                return False
            row.update(status=J.COMPLETED, updated_at=J.utcnow_iso())
        row = self.jobs.update_batch(batch_id, mutate) or {}
        self.vault.forget(row.get("credential"))
        runs = self.jobs.children(batch_id)
        outcome = {s: sum(1 for r in runs if r["status"] == s) for s in J.FINISHED}
        log_event("batch.completed", batch_id=batch_id, **outcome)
        return {"status": row.get("status"), **outcome}
