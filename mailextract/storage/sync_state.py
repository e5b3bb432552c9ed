"""Delta state per mailbox folder: the saved deltaLink that makes the next sync incremental.

  table `SyncState`: PartitionKey connection_id, RowKey `{mailbox}|{folder id}` (encoded).
A deltaLink is saved only after every page of the round it ends is stored (graph-mail.md:
saving a cursor past unprocessed items loses mail silently). A folder that disappeared from the
mailbox keeps its row, marked with deleted_at.
"""
from __future__ import annotations

from typing import Any

from azure.data.tables import UpdateMode

from mailextract.jobs import utcnow_iso
from mailextract.settings import Settings
from mailextract.storage import account
from mailextract.storage.keys import encode, odata_literal

TABLE = "SyncState"


def _key(user_upn: str, folder_id: str) -> str:
    return f"{encode(user_upn.lower())}|{encode(folder_id)}"


class SyncStateStore:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings

    @property
    def table(self):
        return account.table(TABLE, self.settings)

    def folders(self, connection_id: str, user_upn: str) -> dict[str, dict[str, Any]]:
        """Saved state of a mailbox's folders, by folder id."""
        prefix = f"{encode(user_upn.lower())}|"
        query = (f"PartitionKey eq {odata_literal(connection_id)} and RowKey ge {odata_literal(prefix)} "
                 f"and RowKey lt {odata_literal(prefix[:-1] + '}')}")
        return {e["folder_id"]: dict(e) for e in self.table.query_entities(query)}

    def save_delta_link(self, connection_id: str, user_upn: str, folder_id: str, folder_path: str,
                        delta_link: str, *, ids_only: bool = False) -> None:
        """`ids_only`: the link's rounds return message ids only (a split folder's mark took it),
        so their created and updated messages are fetched one by one."""
        self.table.upsert_entity({
            "PartitionKey": connection_id, "RowKey": _key(user_upn, folder_id), "user_upn": user_upn,
            "folder_id": folder_id, "folder_path": folder_path, "delta_link": delta_link, "ids_only": ids_only,
            "updated_at": utcnow_iso(), "deleted_at": None}, mode=UpdateMode.REPLACE)

    def mark_folder_deleted(self, connection_id: str, user_upn: str, folder_id: str) -> None:
        self.table.upsert_entity({"PartitionKey": connection_id, "RowKey": _key(user_upn, folder_id),
                                  "delta_link": None, "deleted_at": utcnow_iso()}, mode=UpdateMode.MERGE)
