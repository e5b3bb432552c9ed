"""One simulated mailbox: a lazily generated base population plus a log of mutations.

Why: tests need mailboxes of realistic size (up to hundreds of thousands of messages) that change
between calls (new, updated, moved, deleted messages; new and deleted folders) so that paging,
delta and incremental syncs can be checked exactly against a "truth" listing.

How it stays small: the base population is described by a seeded layout computed once (one byte
of folder and one bit of read state per message, plus per-folder index arrays); a message's
receivedDateTime is a strictly increasing function of its number, so ordering and date filters are
binary searches, and everything else about a message is derived on demand (see content.py). Only
mutations are stored, and each mutation is appended to a change log that per-folder delta reads.

Thread safety: one re-entrant lock per mailbox; the HTTP server and the Python API both take it.
"""
from __future__ import annotations

import bisect
import calendar
import copy
import random
import threading
import time
import uuid
from array import array
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from . import content, ids

DEFAULT_END = calendar.timegm((2025, 6, 1, 0, 0, 0))
DEFAULT_YEARS = 3.0
_USER_NS = uuid.UUID("6f0f6c7e-3c38-4c8e-9d5e-67b2a3c1d2e0")

# (number, well-known name, display name, parent number, weight of the base population)
_LAYOUT = [
    (0, "msgfolderroot", "Top of Information Store", None, 0),
    (1, "inbox", "Inbox", 0, 50),
    (2, None, "Projects", 1, 8),
    (3, None, "Receipts", 1, 6),
    (4, None, "Clients 🌍", 2, 3),
    (5, "sentitems", "Sent Items", 0, 16),
    (6, "deleteditems", "Deleted Items", 0, 4),
    (7, "drafts", "Drafts", 0, 1),
    (8, "archive", "Archive", 0, 10),
    (9, "junkemail", "Junk Email", 0, 2),
    (10, "outbox", "Outbox", 0, 0),
    (11, "conversationhistory", "Conversation History", 0, 0),
]
_READ_SHARE = {"sentitems": 1.0, "drafts": 1.0, "archive": 1.0, "deleteditems": 1.0, "outbox": 1.0,
               "junkemail": 0.3}
WELL_KNOWN_NAMES = frozenset(w for _, w, _, _, _ in _LAYOUT if w)

UPDATABLE_FIELDS = frozenset({
    "subject", "body", "isRead", "isDraft", "importance", "categories", "flag", "inferenceClassification",
    "from", "from_", "sender", "toRecipients", "ccRecipients", "bccRecipients", "replyTo",
    "isDeliveryReceiptRequested", "isReadReceiptRequested",
})
ADD_ONLY_FIELDS = frozenset({"receivedDateTime", "sentDateTime", "internetMessageId", "attachments"})


class NotFound(KeyError):
    """A message or folder that does not exist (any more) in this mailbox."""


@dataclass
class Folder:
    num: int
    display_name: str
    parent: int | None
    well_known: str | None = None
    hidden: bool = False


@dataclass
class MessageView:
    """A snapshot of one message, enough to render every representation of it."""
    key: int
    folder: int
    received: int
    created: int
    modified: int
    version: int
    conversation: int
    content: content.MessageContent


@dataclass
class _Added:
    received: int
    created: int
    content: content.MessageContent


def to_epoch(value: Any) -> int:
    """Accept a datetime (naive = UTC), an ISO 8601 string or epoch seconds."""
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp())
    raise TypeError(f"not a date/time: {value!r}")


def _person(value: Any) -> content.Person:
    if isinstance(value, content.Person):
        return value
    if isinstance(value, dict):
        email = value.get("emailAddress", value)
        return content.Person(email.get("name") or email["address"], email["address"])
    if isinstance(value, str):
        if "<" in value and value.endswith(">"):
            name, address = value[:-1].split("<", 1)
            return content.Person(name.strip().strip('"') or address.strip(), address.strip())
        return content.Person(value, value)
    raise TypeError(f"not an email address: {value!r}")


class Mailbox:
    """A mailbox; the public methods below are graphsim's Python API for changing it."""

    def __init__(self, upn: str, count: int, seed: int, tenant_id: str, *, end: int = DEFAULT_END,
                 years: float = DEFAULT_YEARS, big_attachment_every: int = 200,
                 attachment_rate: float = 0.15) -> None:
        if count < 0:
            raise ValueError("message count must be >= 0")
        self.upn = upn
        self.seed = seed
        self.tenant_id = tenant_id
        self.user_id = str(uuid.uuid5(_USER_NS, f"{seed}|{upn.lower()}"))
        self.tag = ids.mailbox_tag(seed, upn)
        self.owner = content.owner_person(seed, upn)
        self.big_attachment_every = big_attachment_every
        self.attachment_rate = attachment_rate
        self._lock = threading.RLock()
        self._count = count
        span = int(years * 365 * 86400)
        self._step = max(1, span // max(count, 1))
        self._start = end - self._step * count
        self._mix = content.h64(seed, upn, "jitter") & 0xFFFFFFFF

        self._folders: dict[int, Folder] = {n: Folder(n, name, parent, wk) for n, wk, name, parent, _ in _LAYOUT}
        self._next_folder = len(_LAYOUT)
        self._base_folder, self._base_read, self._base_members = self._layout(seed, upn, count)

        self._folder_override: dict[int, int] = {}  # moved base messages and all added messages
        self._deleted: set[int] = set()
        self._added: dict[int, _Added] = {}
        self._overrides: dict[int, dict[str, Any]] = {}
        self._versions: dict[int, int] = {}
        self._modified: dict[int, int] = {}
        self._next_key = count
        self._log: list[tuple[int, int | None, int | None]] = []  # index = seq - 1: (key, old, new)
        self._key_log: dict[int, list[int]] = {}
        self.delta_generation = 0
        self._order_cache: dict[int | None, Sequence[int]] = {}
        self._unread_cache: dict[int, int] = {}

    # ------------------------------------------------------------------ layout (base population)

    def _layout(self, seed: int, upn: str, count: int):
        r = random.Random(content.h64(seed, upn, "layout"))
        nums = [n for n, _, _, _, w in _LAYOUT if w]
        weights = [w for n, _, _, _, w in _LAYOUT if w]
        folder_list = r.choices(nums, weights=weights, k=count)
        read_share = {n: _READ_SHARE.get(wk or "", 0.8) for n, wk, _, _, _ in _LAYOUT}
        rand = r.random
        reads = bytearray(1 if rand() < read_share[f] else 0 for f in folder_list)
        members: dict[int, array] = {n: array("I") for n in self._folders}
        for i, f in enumerate(folder_list):
            members[f].append(i)
        return bytearray(folder_list), reads, members

    def base_received(self, key: int) -> int:
        return self._start + key * self._step + ((key * 0x9E3779B1) ^ self._mix) % self._step

    # ------------------------------------------------------------------ lookups

    @property
    def lock(self) -> threading.RLock:
        """Hold it to read several things consistently while other threads may mutate the mailbox."""
        return self._lock

    @property
    def seq(self) -> int:
        return len(self._log)

    def exists(self, key: int) -> bool:
        return key not in self._deleted and (key < self._count or key in self._added)

    def folder_of(self, key: int) -> int | None:
        if key in self._deleted:
            return None
        f = self._folder_override.get(key)
        if f is not None:
            return f
        return self._base_folder[key] if 0 <= key < self._count else None

    def received(self, key: int) -> int:
        added = self._added.get(key)
        return added.received if added else self.base_received(key)

    def sort_key(self, key: int) -> tuple[int, int]:
        return (self.received(key), key)

    def is_read(self, key: int) -> bool:
        o = self._overrides.get(key)
        if o and "is_read" in o:
            return bool(o["is_read"])
        added = self._added.get(key)
        if added:
            return added.content.is_read
        return bool(self._base_read[key])

    def created(self, key: int) -> int:
        added = self._added.get(key)
        return added.created if added else self.base_received(key) + 2

    def modified(self, key: int) -> int:
        return self._modified.get(key, self.created(key) + 5)

    def version(self, key: int) -> int:
        return self._versions.get(key, 0)

    def role_of(self, folder: int) -> str:
        f = self._folders.get(folder)
        while f is not None:
            if f.well_known and f.well_known != "msgfolderroot":
                return f.well_known
            f = self._folders.get(f.parent) if f.parent is not None else None
        return "inbox"

    def folder_id(self, folder: int | str) -> str:
        """The Graph id of a folder given its number, well-known name, display path or id."""
        return ids.encode(ids.FOLDER, self.tag, self.resolve_folder(folder))

    def message_id(self, key: int, immutable: bool = True, folder: int | None = None) -> str:
        if immutable:
            return ids.encode(ids.MESSAGE_IMMUTABLE, self.tag, key)
        folder = self.folder_of(key) if folder is None else folder
        return ids.encode(ids.MESSAGE_REST, self.tag, key, folder if folder is not None else 0)

    def attachment_id(self, key: int, index: int) -> str:
        return ids.encode(ids.ATTACHMENT, self.tag, key, index)

    def conversation_id(self, root: int) -> str:
        return ids.encode(ids.CONVERSATION, self.tag, root)

    def resolve_folder(self, ref: int | str) -> int:
        """Folder number for a number, a Graph id, a well-known name, or a display path like 'Inbox/Projects'."""
        with self._lock:
            if isinstance(ref, int):
                if ref in self._folders:
                    return ref
                raise NotFound(ref)
            lowered = ref.lower()
            for f in self._folders.values():
                if f.well_known and f.well_known == lowered:
                    return f.num
            decoded = ids.decode(ref, self.tag)
            if decoded and decoded[0] == ids.FOLDER and decoded[1][0] in self._folders:
                return decoded[1][0]
            parent, found = 0, None
            for part in ref.strip("/").split("/"):
                found = next((f.num for f in self._folders.values()
                              if f.parent == parent and f.display_name.lower() == part.lower()), None)
                if found is None:
                    break
                parent = found
            if found is None and "/" not in ref:
                named = [f.num for f in self._folders.values() if f.display_name.lower() == lowered]
                found = named[0] if len(named) == 1 else None
            if found is None:
                raise NotFound(ref)
            return found

    def resolve_message(self, ref: str | int) -> int:
        """Key of a live message given its immutable id, its current REST id, or its key."""
        with self._lock:
            if isinstance(ref, int):
                if self.exists(ref):
                    return ref
                raise NotFound(ref)
            decoded = ids.decode(ref, self.tag)
            if decoded:
                kind, numbers = decoded
                if kind == ids.MESSAGE_IMMUTABLE and self.exists(numbers[0]):
                    return numbers[0]
                if kind == ids.MESSAGE_REST and self.exists(numbers[0]) and self.folder_of(numbers[0]) == numbers[1]:
                    return numbers[0]
            raise NotFound(ref)

    def folder(self, num: int) -> Folder:
        with self._lock:
            try:
                return self._folders[num]
            except KeyError:
                raise NotFound(num) from None

    def children(self, folder: int) -> list[Folder]:
        with self._lock:
            kids = [f for f in self._folders.values() if f.parent == folder]
        return sorted(kids, key=lambda f: (f.display_name.lower(), f.num))

    # ------------------------------------------------------------------ ordered listings

    def ordered(self, folder: int | None) -> Sequence[int]:
        """Live message keys of a folder (None: whole mailbox) sorted by (receivedDateTime, key) ascending."""
        with self._lock:
            cached = self._order_cache.get(folder)
            if cached is not None:
                return cached
            if folder is None:
                base: Sequence[int] = range(self._count)
                if any(k < self._count for k in self._deleted):
                    base = [k for k in base if k not in self._deleted]
                extras = [k for k in self._added if k not in self._deleted]
            else:
                base = self._base_members.get(folder, array("I"))
                touched = self._deleted or self._folder_override
                if touched and any((k in self._deleted or k in self._folder_override) for k in base):
                    base = [k for k in base if k not in self._deleted and k not in self._folder_override]
                extras = [k for k, f in self._folder_override.items() if f == folder and k not in self._deleted]
            if extras:
                merged = list(base)
                for k in sorted(extras, key=self.sort_key):
                    bisect.insort(merged, k, key=self.sort_key)
                base = merged
            self._order_cache[folder] = base
            return base

    def total(self, folder: int) -> int:
        return len(self.ordered(folder))

    def unread(self, folder: int) -> int:
        with self._lock:
            cached = self._unread_cache.get(folder)
            if cached is None:
                keys = self.ordered(folder)
                if not self._overrides and not self._added and isinstance(keys, array):
                    cached = sum(1 for k in keys if not self._base_read[k])
                else:
                    cached = sum(1 for k in keys if not self.is_read(k))
                self._unread_cache[folder] = cached
            return cached

    # ------------------------------------------------------------------ message views

    def view(self, key: int) -> MessageView:
        """Snapshot one message; its content is generated outside the lock (it depends on nothing mutable)."""
        with self._lock:
            folder = self.folder_of(key)
            if folder is None:
                raise NotFound(key)
            added = self._added.get(key)
            received = self.received(key)
            stored = copy.copy(added.content) if added else None
            role = None if added else self.role_of(self._base_folder[key])
            overrides = dict(self._overrides.get(key) or {})
            created, modified, version = self.created(key), self.modified(key), self.version(key)
        if stored is not None:
            body, conversation = stored, key
        else:
            body = content.generate(self.seed, self.upn, key, role, self.owner, bool(self._base_read[key]),
                                    self.big_attachment_every, self.attachment_rate)
            conversation = content.thread_root(self.seed, self.upn, key)
        if overrides:
            body = replace(body, **overrides)
        return MessageView(key=key, folder=folder, received=received, created=created, modified=modified,
                           version=version, conversation=conversation, content=body)

    def changes_since(self, seq: int, upto: int) -> list[int]:
        """Keys touched by mutations with sequence numbers in (seq, upto], sorted."""
        with self._lock:
            return sorted({self._log[i][0] for i in range(max(seq, 0), min(upto, len(self._log)))})

    def folder_at(self, key: int, seq: int) -> int | None:
        """Which folder held the message right after mutation number `seq` (None: did not exist)."""
        with self._lock:
            seqs = self._key_log.get(key)
            if seqs:
                i = bisect.bisect_right(seqs, seq)
                if i < len(seqs):
                    return self._log[seqs[i] - 1][1]
            if key >= self._count and key not in self._added:
                return None
            return self.folder_of(key)

    # ------------------------------------------------------------------ Python API: truth

    def folder_list(self) -> list[Folder]:
        with self._lock:
            return [f for f in self._folders.values() if f.num != 0]

    def folders(self) -> list[dict]:
        """Truth: every folder (nested ones included) as Graph mailFolder JSON."""
        from . import shapes
        with self._lock:
            return [shapes.folder_json(self, f) for f in self.folder_list()]

    def messages(self, folder: int | str | None = None, *, immutable_ids: bool = True,
                 include_body: bool = False, fields: Iterable[str] | None = None) -> list[dict]:
        """Truth: current messages (newest first) as Graph message JSON, ids immutable by default.

        `fields` limits the keys (id is always there); asking only for id, parentFolderId,
        receivedDateTime, isRead, changeKey and lastModifiedDateTime avoids generating content,
        which matters for mailboxes of hundreds of thousands of messages.
        """
        from . import shapes
        with self._lock:
            f = None if folder is None else self.resolve_folder(folder)
            keys = list(reversed(self.ordered(f)))
            wanted = None if fields is None else set(fields) | {"id"}
            if wanted is not None and wanted <= shapes.CHEAP_FIELDS:
                return [shapes.cheap_message_json(self, k, wanted, immutable_ids) for k in keys]
            select = None
            if wanted is not None:
                select = [n for n in shapes.MESSAGE_FIELDS if n in wanted]
            elif not include_body:
                select = [n for n in shapes.MESSAGE_FIELDS if n != "body"]
            views = [self.view(k) for k in keys]
        out = []
        for v in views:
            item = shapes.message_json(self, v, select=select, body_type="html", immutable=immutable_ids)
            item.pop("@odata.etag", None)
            out.append(item)
        return out

    def message(self, message_id: str, *, immutable_ids: bool = True, body_type: str = "html") -> dict:
        """Truth: one message as Graph message JSON, its body as html or text."""
        from . import shapes
        v = self.view(self.resolve_message(message_id))
        return shapes.message_json(self, v, select=None, body_type=body_type, immutable=immutable_ids)

    def attachments(self, message_id: str) -> list[dict]:
        """Truth: attachment metadata of a message (id, name, contentType, size, isInline, @odata.type)."""
        from . import shapes
        key = self.resolve_message(message_id)
        v = self.view(key)
        return [shapes.attachment_json(self, v, i, a, include_content=False)
                for i, a in enumerate(v.content.attachments)]

    def count(self, folder: int | str | None = None) -> int:
        with self._lock:
            return len(self.ordered(None if folder is None else self.resolve_folder(folder)))

    # ------------------------------------------------------------------ Python API: mutations

    def _record(self, key: int, old: int | None, new: int | None) -> None:
        self._log.append((key, old, new))
        self._key_log.setdefault(key, []).append(len(self._log))
        self._versions[key] = self._versions.get(key, 0) + 1
        self._modified[key] = max(int(time.time()), self._modified.get(key, 0) + 1, self.received(key))
        self._unread_cache.clear()
        if old != new:
            self._order_cache.clear()

    def add_message(self, folder: int | str = "inbox", **fields: Any) -> str:
        """Deliver a new message; fields use Graph names (subject, body, from, toRecipients, isRead,
        receivedDateTime, attachments=[{"name", "size" or "content", "contentType", "isInline"}]...).
        Returns its immutable id."""
        unknown = set(fields) - UPDATABLE_FIELDS - ADD_ONLY_FIELDS
        if unknown:
            raise ValueError(f"unknown message fields: {sorted(unknown)}")
        with self._lock:
            f = self.resolve_folder(folder)
            if f == 0:
                raise ValueError("messages cannot live in the root folder")
            key = self._next_key
            self._next_key += 1
            now = int(time.time())
            received = to_epoch(fields["receivedDateTime"]) if "receivedDateTime" in fields else now
            role = self.role_of(f)
            generated = content.generate(self.seed, self.upn, key, role, self.owner,
                                         role in ("sentitems", "drafts"), 0, 0.0)
            generated = replace(generated, body=content.BodySpec(seed=generated.body.seed))
            if "sentDateTime" in fields:
                generated.sent_offset = received - to_epoch(fields["sentDateTime"])
            if "internetMessageId" in fields:
                generated.internet_message_id = fields["internetMessageId"]
            if "attachments" in fields:
                generated.attachments = [self._attachment_spec(key, i, a, now)
                                         for i, a in enumerate(fields["attachments"] or [])]
            generated = replace(generated, **self._content_changes(fields))
            self._added[key] = _Added(received=received, created=min(now, received + 2), content=generated)
            self._folder_override[key] = f
            self._record(key, None, f)
            self._versions[key] = 0
            return self.message_id(key)

    def update_message(self, message_id: str, **fields: Any) -> None:
        """Change fields of a message (isRead, subject, categories, flag, importance, body...)."""
        unknown = set(fields) - UPDATABLE_FIELDS
        if unknown:
            raise ValueError(f"fields that cannot be updated: {sorted(unknown)}")
        with self._lock:
            key = self.resolve_message(message_id)
            changes = self._content_changes(fields)
            self._overrides.setdefault(key, {}).update(changes)
            f = self.folder_of(key)
            self._record(key, f, f)

    def move_message(self, message_id: str, folder: int | str) -> str:
        """Move a message to another folder; returns its (unchanged) immutable id."""
        with self._lock:
            key = self.resolve_message(message_id)
            target = self.resolve_folder(folder)
            if target == 0:
                raise ValueError("messages cannot live in the root folder")
            old = self.folder_of(key)
            self._folder_override[key] = target
            self._record(key, old, target)
            return self.message_id(key)

    def delete_message(self, message_id: str) -> None:
        """Delete a message permanently (to soft-delete, move it to 'deleteditems')."""
        with self._lock:
            key = self.resolve_message(message_id)
            old = self.folder_of(key)
            self._deleted.add(key)
            self._record(key, old, None)

    def add_folder(self, name: str, parent: int | str | None = None, *, hidden: bool = False) -> str:
        """Create a folder (under the root, i.e. top level, when parent is None); returns its id."""
        with self._lock:
            p = 0 if parent is None else self.resolve_folder(parent)
            if any(f.parent == p and f.display_name.lower() == name.lower() for f in self._folders.values()):
                raise ValueError(f"a folder named {name!r} already exists there")
            num = self._next_folder
            self._next_folder += 1
            self._folders[num] = Folder(num, name, p, None, hidden)
            self._order_cache.pop(num, None)
            return ids.encode(ids.FOLDER, self.tag, num)

    def delete_folder(self, folder: int | str) -> None:
        """Delete a folder, its subfolders and their messages permanently (well-known ones cannot go)."""
        with self._lock:
            num = self.resolve_folder(folder)
            if self._folders[num].well_known:
                raise ValueError("well-known folders cannot be deleted")
            doomed = [num]
            for f in doomed:
                doomed.extend(c.num for c in self._folders.values() if c.parent == f)
            for f in doomed:
                for key in list(self.ordered(f)):
                    self._deleted.add(key)
                    self._record(key, f, None)
            for f in doomed:
                del self._folders[f]
            self._order_cache.clear()

    def expire_delta_tokens(self) -> None:
        with self._lock:
            self.delta_generation += 1

    # ------------------------------------------------------------------ helpers

    def _content_changes(self, fields: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "subject":
                out["subject"] = str(value)
            elif name == "body":
                if isinstance(value, dict):
                    kind = str(value.get("contentType", "html")).lower()
                    text = value.get("content", "")
                    out["body"] = content.BodySpec(html=text) if kind == "html" else content.BodySpec(text=text)
                else:
                    out["body"] = content.BodySpec(html=str(value))
            elif name == "isRead":
                out["is_read"] = bool(value)
            elif name == "isDraft":
                out["is_draft"] = bool(value)
            elif name == "importance":
                if value not in ("low", "normal", "high"):
                    raise ValueError("importance must be low, normal or high")
                out["importance"] = value
            elif name == "categories":
                out["categories"] = [str(c) for c in value]
            elif name == "flag":
                status = value.get("flagStatus") if isinstance(value, dict) else value
                if status not in ("notFlagged", "flagged", "complete"):
                    raise ValueError("flagStatus must be notFlagged, flagged or complete")
                out["flag"] = status
            elif name == "inferenceClassification":
                out["inference"] = value
            elif name in ("from", "from_", "sender"):
                out["sender"] = _person(value)
            elif name in ("toRecipients", "ccRecipients", "bccRecipients", "replyTo"):
                attr = {"toRecipients": "to", "ccRecipients": "cc", "bccRecipients": "bcc",
                        "replyTo": "reply_to"}[name]
                out[attr] = [_person(v) for v in value]
            elif name == "isDeliveryReceiptRequested":
                out["delivery_receipt"] = bool(value)
            elif name == "isReadReceiptRequested":
                out["read_receipt"] = bool(value)
        return out

    def _attachment_spec(self, key: int, index: int, spec: dict, now: int) -> content.AttachmentSpec:
        data = spec.get("content")
        if isinstance(data, str):
            data = data.encode("utf-8")
        size = len(data) if data is not None else int(spec.get("size", 1024))
        return content.AttachmentSpec(
            name=spec.get("name", f"attachment{index}.bin"),
            content_type=spec.get("contentType", "application/octet-stream"),
            size=size, is_inline=bool(spec.get("isInline", False)), content_id=spec.get("contentId"),
            content=data, pattern_seed=content.h64(self.seed, self.upn, "added-att", key, index),
            last_modified=now)
