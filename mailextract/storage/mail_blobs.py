"""Message bodies and attachments in Blob storage.

  container `mail`:
    {connection_id}/bodies/{digest}.html | .txt        a body pack: the bodies of one stored page,
                                                       concatenated (UTF-8); each index row holds its
                                                       message's body_offset and body_length in it
    {connection_id}/{message_id}/attachments/{attachment_id}   a file attachment's bytes

Why packs: a blob upload costs the client about 2 ms of CPU whatever its size (storage.md), so one
blob per message caps a run near 300-500 messages/s per core, below what Graph delivers with 4
requests in flight; one upload per page costs almost nothing per message, and a ranged read gets
one body back. A pack's name is the digest of its content, so writing it is idempotent (a page
stored twice with the same content writes the same blob; a retry that saw different content writes
a new pack, and the index rows stored after it point there). Attachment paths derive from
immutable ids, as before. Ids are encoded with storage.keys.encode.
"""
from __future__ import annotations

import hashlib
from typing import IO, Iterable
from urllib.parse import quote

from azure.core import MatchConditions
from azure.storage.blob import ContentSettings

from mailextract.settings import Settings
from mailextract.storage import account
from mailextract.storage.keys import encode

CONTAINER = "mail"
PACK_FILLER = b" "  # what replaces the bytes of a purged body inside a pack


def pack_folder(connection_id: str) -> str:
    return f"{connection_id}/bodies/"


def pack_name(connection_id: str, content: bytes, body_format: str) -> str:
    digest = hashlib.sha256(content).hexdigest()[:40]
    return f"{pack_folder(connection_id)}{digest}.{'txt' if body_format == 'text' else 'html'}"


def attachment_blob_name(connection_id: str, message_id: str, attachment_id: str) -> str:
    return f"{connection_id}/{encode(message_id)}/attachments/{encode(attachment_id)}"


def blank_outside(content: bytes, keep: Iterable[tuple[int, int]]) -> bytes:
    """The pack with every byte outside the (offset, length) ranges in `keep` overwritten.

    Offsets of the kept bodies do not move, so the index rows pointing into the pack stay right.
    """
    out = bytearray(PACK_FILLER * len(content))
    for offset, length in keep:
        out[offset:offset + length] = content[offset:offset + length]
    return bytes(out)


class MailBlobs:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings

    @property
    def container(self):
        return account.container(CONTAINER, self.settings)

    def put_pack(self, connection_id: str, content: bytes, body_format: str) -> str:
        """Store the bodies of one page as a pack; its name (the rows point into it)."""
        name = pack_name(connection_id, content, body_format)
        content_type = "text/plain; charset=utf-8" if body_format == "text" else "text/html; charset=utf-8"
        self.container.upload_blob(name, content, overwrite=True,
                                   content_settings=ContentSettings(content_type=content_type))
        return name

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        return self.container.download_blob(name, offset=offset, length=length).readall()

    def keep_only(self, name: str, keep: list[tuple[int, int]]) -> bool:
        """Overwrite the bytes of `name` outside `keep`; True when anything changed.

        The rewrite is conditional on the ETag read, so a concurrent writer of the same pack (a
        retried page that produced the same content) is never overwritten with stale bytes.
        """
        downloader = self.container.download_blob(name)
        content = downloader.readall()
        cleaned = blank_outside(content, keep)
        if cleaned == content:
            return False
        self.container.upload_blob(name, cleaned, overwrite=True, etag=downloader.properties.etag,
                                   match_condition=MatchConditions.IfNotModified,
                                   content_settings=ContentSettings(
                                       content_type=downloader.properties.content_settings.content_type))
        return True

    def put_stream(self, name: str, stream: IO[bytes], length: int, content_type: str | None,
                   filename: str | None) -> None:
        self.container.upload_blob(name, stream, length=length, overwrite=True, metadata=None,
                                   content_settings=ContentSettings(
                                       content_type=content_type or "application/octet-stream",
                                       content_disposition=_disposition(filename)))

    def read_bytes(self, name: str) -> bytes:
        return self.container.download_blob(name).readall()

    def names(self, prefix: str) -> list[str]:
        return [b.name for b in self.container.list_blobs(name_starts_with=prefix)]

    def delete(self, name: str) -> None:
        self.container.delete_blob(name)

    def delete_prefix(self, prefix: str) -> int:
        names = self.names(prefix)
        for name in names:
            self.delete(name)
        return len(names)


def _disposition(filename: str | None) -> str | None:
    if not filename:
        return None
    return f"attachment; filename*=UTF-8''{quote(filename)}"
