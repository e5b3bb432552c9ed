"""Message bodies and attachments in Blob storage, under a stable, documented layout:

  container `mail`:
    {connection_id}/{message_id}/body.html | body.txt     the body, in the run's body_format
    {connection_id}/{message_id}/attachments/{attachment_id}   a file attachment's bytes
Ids are encoded with storage.keys.encode. Every path derives from immutable ids, so a re-run
overwrites the same blobs instead of adding new ones (writes are idempotent, as activities
run at least once).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import IO, Iterable

from azure.storage.blob import ContentSettings

from mailextract.settings import Settings
from mailextract.storage import account
from mailextract.storage.keys import encode

CONTAINER = "mail"
_uploads = ThreadPoolExecutor(16, thread_name_prefix="blob-upload")


def body_blob_name(connection_id: str, message_id: str, body_format: str) -> str:
    return f"{connection_id}/{encode(message_id)}/body.{'txt' if body_format == 'text' else 'html'}"


def attachment_blob_name(connection_id: str, message_id: str, attachment_id: str) -> str:
    return f"{connection_id}/{encode(message_id)}/attachments/{encode(attachment_id)}"


class MailBlobs:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings

    @property
    def container(self):
        return account.container(CONTAINER, self.settings)

    def put_bodies(self, bodies: Iterable[tuple[str, str, str]]) -> None:
        """Upload (blob name, text, content type) concurrently; returns when all are stored."""
        def upload(item: tuple[str, str, str]) -> None:
            name, text, content_type = item
            self.container.upload_blob(name, text.encode("utf-8"), overwrite=True,
                                       content_settings=ContentSettings(content_type=content_type))
        for future in [_uploads.submit(upload, item) for item in bodies]:
            future.result()

    def put_stream(self, name: str, stream: IO[bytes], length: int, content_type: str | None,
                   filename: str | None) -> None:
        self.container.upload_blob(name, stream, length=length, overwrite=True, metadata=None,
                                   content_settings=ContentSettings(
                                       content_type=content_type or "application/octet-stream",
                                       content_disposition=_disposition(filename)))

    def read_bytes(self, name: str) -> bytes:
        return self.container.download_blob(name).readall()

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode("utf-8")

    def delete_prefix(self, prefix: str) -> int:
        names = [b.name for b in self.container.list_blobs(name_starts_with=prefix)]
        for name in names:
            self.container.delete_blob(name)
        return len(names)


def _disposition(filename: str | None) -> str | None:
    if not filename:
        return None
    from urllib.parse import quote
    return f"attachment; filename*=UTF-8''{quote(filename)}"
