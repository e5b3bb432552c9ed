"""Small records returned by the Graph client.

Why: callers (activities, extraction steps) should not depend on Graph's JSON spelling for the
few fields they route on (folder paths, attachment kinds). Message items stay plain dicts: the
``$select`` list decides their shape and they go straight to storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MailFolder:
    """One mail folder; ``path`` joins display names from the root, e.g. ``Inbox/Projects``."""

    id: str
    display_name: str
    parent_id: str | None
    path: str
    total_count: int | None  # None when Graph did not say (a count of 0 lets a first run skip the folder)
    unread_count: int = 0
    child_folder_count: int = 0


@dataclass(frozen=True)
class MessagePage:
    """One page of a message listing.

    ``next_cursor`` is None at the end; otherwise save it (JSON) and pass it back to continue.
    """

    items: list[dict[str, Any]]
    next_cursor: dict[str, Any] | None


@dataclass(frozen=True)
class RemovedItem:
    """A delta ``@removed`` entry: ``reason`` is ``deleted`` or ``changed`` (moved out, etc.)."""

    id: str
    reason: str


@dataclass(frozen=True)
class DeltaPage:
    """One page of a folder delta round.

    Exactly one of ``next_cursor`` (more pages in this round) and ``delta_link`` (round done) is
    set. ``next_round_cursor`` is the cursor for the next round (deltaLink plus the same
    preferences); save it only once everything of this round is stored (graph-mail.md "Delta").
    """

    items: list[dict[str, Any]]
    removed: list[RemovedItem]
    next_cursor: dict[str, Any] | None
    delta_link: str | None
    next_round_cursor: dict[str, Any] | None = None

    @property
    def removed_ids(self) -> list[str]:
        return [r.id for r in self.removed]


@dataclass(frozen=True)
class Attachment:
    """Attachment metadata. ``kind`` is ``file``, ``item`` or ``reference``.

    Content is read separately through ``$value`` (file attachments over ~3 MB come without
    ``contentBytes``, graph-mail.md "Attachments and MIME").
    """

    id: str
    name: str | None
    content_type: str | None
    size: int
    is_inline: bool
    kind: str
    last_modified: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
