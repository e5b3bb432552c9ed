"""Which folders a run pages through, and how: the run's plan.

A plan is a list of streams, several read at once: `{"upn", "id", "path", "total", "mode",
"delta_link"}` and, for windows, `"received_after"`, `"received_before"`, `"after"`, `"round"`.
Mode `delta` reads the folder with Graph delta, so the round ends with a deltaLink that makes the
next sync incremental; mode `list` pages a plain listing, used when an extraction has a date
window (delta cannot filter by an upper date: graph-mail.md). A sync starts each folder from its
saved deltaLink; a folder without one (new, or never read) gets a full round.

A folder of at least SPLIT_MIN_MESSAGES that needs a full read is split, so one huge Inbox also
keeps 4 requests in flight: its content is read as `window` streams, listings of half-open
receivedDateTime windows (the first open below, the last open above, so together they cover
the folder whatever the dates). A folder that delta reads gets a `mark` stream first: a delta
round of ids only that takes the deltaLink *before* any window reads content. Windows of that
folder are claimed only once its mark is done (`after`); the run's finish then sweeps the folder's
rows the windows did not store (`round`) and saves the mark's deltaLink. Every change after the
mark is in the deltaLink's next round, so nothing read by a window can be missed by a later sync.
That link keeps the mark's ids-only $select (a deltaLink encodes its query), so it is saved as
`ids_only` and its later rounds fetch each created or updated message by id (steps.py); a full
round (after Graph expires the state) brings back a link with content.
Plan order: marks first, so they finish while other folders are read; then every other stream,
largest first.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from mailextract.errors import InvalidRequest
from mailextract.graph.models import MailFolder
from mailextract.jobs import ExtractionOptions

SPLIT_MIN_MESSAGES = 2_000
MESSAGES_PER_WINDOW = 1_000  # about 10 pages of 100: the last streams of a run end soon after the others
MAX_WINDOWS = 32

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
    def state(folder_id: str) -> dict[str, Any]:
        return ((saved or {}).get(folder_id) or {}) if sync else {}
    return [{"upn": upn, "id": f.id, "path": f.path, "total": f.total_count, "mode": mode,
             "delta_link": state(f.id).get("delta_link"), "ids_only": bool(state(f.id).get("ids_only"))}
            for f in select_folders(folders, options.folders)]


def deleted_folders(folders: list[MailFolder], saved: dict[str, dict[str, Any]]) -> list[str]:
    """Folders with saved state that the mailbox no longer has."""
    present = {f.id for f in folders}
    return [folder_id for folder_id, row in saved.items() if folder_id not in present and not row.get("deleted_at")]


def needs_split(stream: dict[str, Any]) -> bool:
    """A folder big enough to read in windows, and read in full (not from a saved deltaLink)."""
    full_read = stream["mode"] == "list" or not stream.get("delta_link")
    return full_read and (stream.get("total") or 0) >= SPLIT_MIN_MESSAGES


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def time_windows(oldest: datetime, newest: datetime, count: int, *, after: datetime | None = None,
                 before: datetime | None = None) -> list[tuple[str | None, str | None]]:
    """`count` half-open windows of equal duration between the folder's oldest and newest message.

    The outer bounds are `after`/`before` (a run's own date window) or open, so a message outside
    [oldest, newest] (delivered or moved in while the run reads) still falls in a window.
    """
    if count < 2 or newest <= oldest:
        return [(_iso(after), _iso(before))]
    step = (newest - oldest) / count
    bounds: list[datetime | None] = [after, *(oldest + step * i for i in range(1, count)), before]
    return [(_iso(lo), _iso(hi)) for lo, hi in zip(bounds, bounds[1:])]


def window_count(total: int) -> int:
    return max(2, min(MAX_WINDOWS, total // MESSAGES_PER_WINDOW))


def arrange(streams: list[dict[str, Any]], windows: dict[int, list[tuple[str | None, str | None]]],
            run_id: str) -> list[dict[str, Any]]:
    """The plan: marks of split delta folders first, then every other stream, largest first.

    `windows` maps a position in `streams` to that folder's windows (from time_windows). Largest
    first keeps the run's tail short: the last streams claimed are the quickest to read.
    """
    marks = [i for i in windows if streams[i]["mode"] == "delta"]
    plan = [{**streams[i], "mode": "mark", "round": f"{run_id}.{n}.w"} for n, i in enumerate(marks)]
    rest = [s for i, s in enumerate(streams) if i not in windows]
    for i, bounds in windows.items():
        mark = marks.index(i) if i in marks else None
        rest += [{**streams[i], "mode": "window", "total": streams[i]["total"] // len(bounds),
                  "received_after": lo, "received_before": hi,
                  "after": mark, "round": None if mark is None else plan[mark]["round"]} for lo, hi in bounds]
    return plan + sorted(rest, key=lambda s: -(s.get("total") or 0))


# --- claiming streams: checkpoint {"next", "ahead", "active"} -----------------------------------
# Streams are claimed in plan order, skipping a window whose mark is still being read: every index
# below `next` is claimed, and `ahead` lists the ones claimed beyond it.
WAIT = "wait"


def is_claimed(checkpoint: dict[str, Any], index: int) -> bool:
    return index < checkpoint["next"] or index in (checkpoint.get("ahead") or [])


def next_claim(plan: list[dict[str, Any]], checkpoint: dict[str, Any], mailbox: str | None = None) -> int | str | None:
    """The stream to claim next (of `mailbox` only, when given): its index, WAIT while the only
    ones left wait for a mark, or None."""
    waiting = False
    for index in range(checkpoint["next"], len(plan)):
        if is_claimed(checkpoint, index) or (mailbox is not None and plan[index]["upn"] != mailbox):
            continue
        after = plan[index].get("after")
        if after is not None and str(after) in checkpoint["active"]:
            waiting = True
            continue
        return index
    return WAIT if waiting else None


def claim(checkpoint: dict[str, Any], index: int) -> None:
    checkpoint["active"][str(index)] = {"cursor": None, "round": None, "restarts": 0}
    ahead = set(checkpoint.get("ahead") or []) | {index}
    while checkpoint["next"] in ahead:
        ahead.discard(checkpoint["next"])
        checkpoint["next"] += 1
    checkpoint["ahead"] = sorted(ahead)


def known_empty(stream: dict[str, Any]) -> bool:
    """A folder read in full (no saved deltaLink) that Graph listed with no message at all.

    On a connection's first run (its index was empty) such a stream needs no request: there is
    nothing to store and no row to sweep. Its folder then has no deltaLink, so the next sync reads
    it in full, as any folder never read: whatever arrived meanwhile is in that round.
    """
    return stream["mode"] in ("delta", "list") and not stream.get("delta_link") and stream.get("total") == 0


def skip_known_empty(plan: list[dict[str, Any]], checkpoint: dict[str, Any]) -> None:
    """Claim and finish at once the streams of folders listed empty (see known_empty)."""
    for index, stream in enumerate(plan):
        if known_empty(stream):
            claim(checkpoint, index)
            del checkpoint["active"][str(index)]


def folders_in(plan: list[dict[str, Any]]) -> int:
    return len({(s["upn"], s["id"]) for s in plan})


def folders_done(plan: list[dict[str, Any]], checkpoint: dict[str, Any]) -> int:
    """Folders whose every stream has been read to its end."""
    open_folders = {(s["upn"], s["id"]) for i, s in enumerate(plan)
                    if not is_claimed(checkpoint, i) or str(i) in checkpoint["active"]}
    return folders_in(plan) - len(open_folders)
