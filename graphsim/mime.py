"""The MIME form of a message (what `GET .../messages/{id}/$value` returns), streamed.

Why: extraction may archive full MIME; messages can carry attachments of several MB, so the MIME
text is produced as a stream of chunks (base64 lines encoded as the attachment bytes are
generated) instead of being built in memory per request.
"""
from __future__ import annotations

import base64
from email.header import Header
from email.utils import format_datetime, formataddr
from datetime import datetime, timezone
from typing import Iterator

from . import content, shapes


def _addr(person: content.Person) -> str:
    return formataddr((person.name, person.address), charset="utf-8")


def _addr_list(people) -> str:
    return ", ".join(_addr(p) for p in people)


def _b64_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        cut = len(pending) - len(pending) % 57
        if cut:
            encoded = base64.b64encode(pending[:cut])
            yield b"".join(encoded[i:i + 76] + b"\r\n" for i in range(0, len(encoded), 76))
            pending = pending[cut:]
    if pending:
        yield base64.b64encode(pending) + b"\r\n"


def _param(name: str) -> str:
    """A MIME parameter value; non-ASCII names use RFC 2047 words as Outlook does."""
    try:
        name.encode("ascii")
        return '"' + name.replace('"', "'") + '"'
    except UnicodeEncodeError:
        return '"' + Header(name, "utf-8").encode() + '"'


def message_mime(mbx, view) -> Iterator[bytes]:
    c = view.content
    boundary_mixed = f"_004_graphsim{view.key:08x}{view.version:04x}_"
    boundary_alt = f"_000_graphsim{view.key:08x}{view.version:04x}_"
    received = datetime.fromtimestamp(view.received, tz=timezone.utc)
    sent = datetime.fromtimestamp(view.received - c.sent_offset, tz=timezone.utc)
    files = [a for a in c.attachments]
    headers = [
        f"Received: from graphsim.invalid by {mbx.upn.split('@')[-1]} with HTTPS; {format_datetime(received)}",
        f"From: {_addr(c.sender)}",
        f"To: {_addr_list(c.to)}" if c.to else None,
        f"CC: {_addr_list(c.cc)}" if c.cc else None,
        f"Reply-To: {_addr_list(c.reply_to)}" if c.reply_to else None,
        f"Subject: {Header(c.subject, 'utf-8').encode()}",
        f"Thread-Topic: {Header(c.subject.removeprefix('RE: ').removeprefix('FW: '), 'utf-8').encode()}",
        f"Thread-Index: {shapes._conversation_index(mbx, view)}",
        f"Date: {format_datetime(sent)}",
        f"Message-ID: {c.internet_message_id}",
        f"Importance: {c.importance}",
        "Content-Language: en-US",
        f"X-MS-Has-Attach: {'yes' if any(not a.is_inline for a in files) else ''}",
        "MIME-Version: 1.0",
    ]
    head = "\r\n".join(h for h in headers if h is not None) + "\r\n"
    html = content.render_html(c.body).encode("utf-8")
    text = content.render_text(c.body).encode("utf-8")
    alternative = (
        f"--{boundary_alt}\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + b"".join(_b64_lines(iter([text]))) + (
        f"\r\n--{boundary_alt}\r\nContent-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + b"".join(_b64_lines(iter([html]))) + f"\r\n--{boundary_alt}--\r\n".encode()
    if not files:
        yield (head + f'Content-Type: multipart/alternative;\r\n\tboundary="{boundary_alt}"\r\n\r\n').encode()
        yield alternative
        return
    yield (head + f'Content-Type: multipart/mixed;\r\n\tboundary="{boundary_mixed}"\r\n\r\n').encode()
    yield (f"--{boundary_mixed}\r\nContent-Type: multipart/alternative;\r\n\tboundary=\"{boundary_alt}\"\r\n\r\n"
           ).encode() + alternative
    for a in files:
        disposition = "inline" if a.is_inline else "attachment"
        part = [f"--{boundary_mixed}"]
        if a.kind == "item":
            part += ["Content-Type: message/rfc822", f"Content-Disposition: attachment; filename={_param(a.name)}",
                     "", ""]
            yield "\r\n".join(part).encode()
            yield content.item_attachment_mime(a) + b"\r\n"
            continue
        part += [f"Content-Type: {a.content_type}; name={_param(a.name)}",
                 f"Content-Description: {Header(a.name, 'utf-8').encode()}",
                 f"Content-Disposition: {disposition}; filename={_param(a.name)}; size={a.size}"]
        if a.content_id:
            part.append(f"Content-ID: <{a.content_id}>")
        part += ["Content-Transfer-Encoding: base64", "", ""]
        yield "\r\n".join(part).encode()
        yield from _b64_lines(content.attachment_chunks(a))
    yield f"\r\n--{boundary_mixed}--\r\n".encode()
