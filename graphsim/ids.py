"""Graph-looking opaque ids that graphsim can decode back to (mailbox, kind, numbers).

Why: clients must treat ids as opaque, case-sensitive strings, so the simulator hands out long
base64 strings like Exchange does, while staying stateless: an id decodes to the mailbox tag and
the message/folder/attachment numbers it names, so no id table is kept even for mailboxes with
hundreds of thousands of messages. A check digest makes random strings decode to nothing (404).

Kinds: a REST message id also names the folder it was issued in (it stops resolving after a move,
as default Graph ids do); an immutable message id does not (it survives moves).
"""
from __future__ import annotations

import base64
import hashlib
import struct

FOLDER = 1
MESSAGE_IMMUTABLE = 2
MESSAGE_REST = 3
ATTACHMENT = 4
CONVERSATION = 5

_HEADER = b"\x00\x03\x24\x00"  # what makes real Exchange ids start with "AAMkA"
_FILLER = {
    FOLDER: b"\x2e\x00\x00\x00\x00\x00",
    MESSAGE_IMMUTABLE: b"\x46\x00\x00\x00\x00\x00\x07\x00",
    MESSAGE_REST: b"\x46\x00\x00\x00\x00\x00\x07\x00",
    ATTACHMENT: b"\x46\x00\x00\x00\x00\x00\x07\x00\x01\x12\x00\x10\x00",
    CONVERSATION: b"\x10\x00",
}
_ARITY = {FOLDER: 1, MESSAGE_IMMUTABLE: 1, MESSAGE_REST: 2, ATTACHMENT: 2, CONVERSATION: 1}


def _check(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=4, person=b"graphsim-id").digest()


def encode(kind: int, tag: bytes, *numbers: int) -> str:
    if len(numbers) != _ARITY[kind]:
        raise ValueError("wrong number of id parts")
    body = _HEADER + tag + bytes([kind]) + _FILLER[kind] + struct.pack(f">{len(numbers)}I", *numbers)
    return base64.urlsafe_b64encode(body + _check(body)).decode("ascii")


def decode(value: str, tag: bytes | None = None) -> tuple[int, tuple[int, ...]] | None:
    """Return (kind, numbers) for an id made by `encode`, or None (also if for another mailbox)."""
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    if len(raw) < 4 + 8 + 1 + 4 or not raw.startswith(_HEADER):
        return None
    body, check = raw[:-4], raw[-4:]
    if _check(body) != check:
        return None
    id_tag, kind = body[4:12], body[12]
    if kind not in _ARITY or (tag is not None and id_tag != tag):
        return None
    filler = _FILLER[kind]
    rest = body[13:]
    if not rest.startswith(filler) or len(rest) != len(filler) + 4 * _ARITY[kind]:
        return None
    numbers = struct.unpack(f">{_ARITY[kind]}I", rest[len(filler):])
    return kind, numbers


def mailbox_tag(seed: int, upn: str) -> bytes:
    return hashlib.blake2b(f"{seed}|{upn.lower()}".encode(), digest_size=8, person=b"graphsim-mbx").digest()
