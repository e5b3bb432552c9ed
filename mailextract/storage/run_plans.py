"""A run's plan (the mailbox folders it pages through, in order) kept in Blob storage.

A plan can list thousands of folders across many mailboxes, more than a table property holds;
the job row keeps only the plan's name, the position in it and the Graph cursor.
  container `mail-runs`: {connection_id}/{run_id}.json
Plans never change once written, so each process caches the ones it read.
"""
from __future__ import annotations

import functools
import json
from typing import Any

from mailextract.settings import Settings
from mailextract.storage import account

CONTAINER = "mail-runs"


class RunPlans:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings

    def put(self, connection_id: str, run_id: str, streams: list[dict[str, Any]]) -> str:
        name = f"{connection_id}/{run_id}.json"
        account.container(CONTAINER, self.settings).upload_blob(name, json.dumps(streams).encode(), overwrite=True)
        return name

    def get(self, name: str) -> list[dict[str, Any]]:
        return _read(account.container(CONTAINER, self.settings), name)


@functools.lru_cache(maxsize=256)
def _read(container, name: str) -> list[dict[str, Any]]:
    return json.loads(container.download_blob(name).readall())
