"""Which folders a run pages through, and how: the run's plan.

A plan is a list of streams, one per mailbox folder: `{"upn", "id", "path", "total", "mode",
"delta_link"}`. Mode `delta` reads the folder with Graph delta, so the round ends with a
deltaLink that makes the next sync incremental; mode `list` pages a plain listing, used when
an extraction has a date window (delta cannot filter by an upper date: graph-mail.md).
A sync starts each folder from its saved deltaLink; a folder without one (new, or never read)
gets a full round.
"""
from __future__ import annotations

from typing import Any

from mailextract.errors import InvalidRequest
from mailextract.graph.models import MailFolder
from mailextract.jobs import ExtractionOptions

WELL_KNOWN = {"inbox": "inbox", "sentitems": "sent items", "deleteditems": "deleted items",
              "drafts": "drafts", "junkemail": "junk email", "archive": "archive"}


def _find_folder(folders: list[MailFolder], name: str) -> MailFolder:
    """By id, else exact path, else well-known name, else display name (which must be unique)."""
    key = name.strip().strip("/").lower()
    target = WELL_KNOWN.get(key.replace(" ", ""), key)
    for matches in ([f for f in folders if f.id == name],
                    [f for f in folders if f.path.lower() in (key, target)],
                    [f for f in folders if f.display_name.lower() in (key, target)]):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            paths = ", ".join(f.path for f in matches)
            raise InvalidRequest(f"folder '{name}' is ambiguous ({paths}); give its path", field="options.folders")
    raise InvalidRequest(f"folder '{name}' was not found in the mailbox", field="options.folders")


def select_folders(folders: list[MailFolder], wanted: tuple[str, ...] | None) -> list[MailFolder]:
    """The folders to extract, in the mailbox's order; a named folder brings its subfolders.

    Well-known names (inbox, sentitems...) are matched through the English display names.
    """
    if not wanted:
        return list(folders)
    chosen = [_find_folder(folders, name).path.lower() for name in wanted]
    return [f for f in folders if any(f.path.lower() == p or f.path.lower().startswith(p + "/") for p in chosen)]


def streams_for(upn: str, folders: list[MailFolder], options: ExtractionOptions, *,
                saved: dict[str, dict[str, Any]] | None = None, sync: bool = False) -> list[dict[str, Any]]:
    """The streams of one mailbox; `saved` is its SyncState by folder id (syncs only)."""
    windowed = options.received_after is not None or options.received_before is not None
    mode = "list" if windowed and not sync else "delta"
    return [{"upn": upn, "id": f.id, "path": f.path, "total": f.total_count, "mode": mode,
             "delta_link": ((saved or {}).get(f.id) or {}).get("delta_link") if sync else None}
            for f in select_folders(folders, options.folders)]


def deleted_folders(folders: list[MailFolder], saved: dict[str, dict[str, Any]]) -> list[str]:
    """Folders with saved state that the mailbox no longer has."""
    present = {f.id for f in folders}
    return [folder_id for folder_id, row in saved.items() if folder_id not in present and not row.get("deleted_at")]
