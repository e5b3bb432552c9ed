"""Deterministic, realistic-looking mail content derived from (seed, mailbox, message number).

Why: an extraction service must be exercised with mail that looks like mail (unicode names and
subjects with accents, CJK and emoji, HTML bodies from a few hundred bytes to tens of KB, threads,
inline images, attachments of all sizes including some over the 3 MB `contentBytes` cutoff),
in mailboxes of hundreds of thousands of messages. Nothing here is stored: every field, body and
attachment byte is recomputed from a hash of (seed, mailbox, number), so a message costs memory only
while a response is being built, and another process with the same seed sees the same mailbox.
"""
from __future__ import annotations

import hashlib
import html
import random
import re
from dataclasses import dataclass, field
from typing import Iterator

ATTACHMENT_INLINE_LIMIT = 3 * 1024 * 1024  # fileAttachments above this come without contentBytes


def h64(*parts: object) -> int:
    data = "|".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def rng(*parts: object) -> random.Random:
    return random.Random(h64(*parts))


FIRST_NAMES = [
    "José", "Zoë", "Amélie", "Björn", "Søren", "Łukasz", "Núria", "François", "Chloé", "Mateus",
    "Aoife", "Ingrid", "Dmitri", "Émile", "Renée", "Özlem", "Jürgen", "Ana Luísa", "Hélène", "Raúl",
    "Priya", "Olusegun", "Mei", "Kenji", "Yuna", "Carlos", "Fatima", "Grace", "Henrik", "Noa",
]
LAST_NAMES = [
    "Álvarez", "Müller", "Ødegaard", "Nowak", "Dubois", "García", "Kowalczyk", "Lefèvre", "Öztürk",
    "Ní Bhriain", "Jørgensen", "Šimková", "Santos", "Okafor", "Patel", "Schröder", "Côté", "Murphy",
    "Silva", "Lindqvist", "Nguyễn", "O'Brien", "Andrés", "Weiß",
]
CJK_NAMES = ["李雷", "王芳", "山田 太郎", "佐藤 花子", "김민준", "陈静", "鈴木 一郎", "박서연"]
EMOJI_NAMES = ["Renée 🌻 Laurent", "Team Bot 🤖", "Café ☕ Club", "Noël ✨ Rivière"]
DOMAINS = ["fabrikam.com", "tailspintoys.com", "northwindtraders.com", "adatum.com", "wingtiptoys.com",
           "litwareinc.com", "proseware.com", "woodgrovebank.com", "example.jp", "contoso.de"]

SUBJECTS = [
    "Quarterly budget review 📊", "Réunion de projet — ordre du jour", "会議のお知らせ（来週火曜日）",
    "Invoice {n} for your records", "Your order #{n} has shipped 📦", "Lunch on Friday? 🍕",
    "Übersicht der Änderungen", "Design review: onboarding flow", "项目进度更新", "Contract renewal — {co}",
    "Travel itinerary: Zürich → São Paulo ✈️", "Re-forecast assumptions", "Welcome to the team! 🎉",
    "Résumé of the workshop", "Action required: expense report {n}", "Weekly status — week {w}",
    "Photos from the offsite 📷", "Soporte técnico: ticket {n}", "Quick question about the API",
    "Holiday schedule 🎄", "회의록 공유드립니다", "Año nuevo, nuevos objetivos", "Draft proposal v{w}",
    "Security notice: password policy", "Receipt for your payment", "Kundenfeedback zu Version {w}.0",
    "Customer escalation: {co}", "Re: Naïve Bayes results", "Sprint {w} retrospective", "Paiement reçu ✔",
]
COMPANIES = ["Fabrikam", "Tailspin Toys", "Northwind", "Adatum", "Wingtip", "Litware", "Proseware"]

SENTENCES = [
    "Please find the latest figures below and let me know if anything looks off.",
    "We agreed to move the deadline by one week to give the team time to test.",
    "The numbers for the last quarter are in line with the forecast.",
    "Merci pour votre retour rapide, nous reviendrons vers vous très bientôt.",
    "Vielen Dank für die schnelle Rückmeldung zu den offenen Punkten.",
    "El equipo revisará la propuesta durante la reunión del jueves.",
    "来週の会議の資料を添付しますので、ご確認ください。",
    "请在周五之前确认最终版本。",
    "I have attached the signed copy of the agreement for your records.",
    "Could you share the dashboard link with the wider group? 🙏",
    "The migration finished overnight without any incidents.",
    "Let us sync tomorrow morning to go through the open items.",
    "Our customer in São Paulo asked for a revised quotation.",
    "Remember to submit your timesheets before the end of the month.",
    "The café on the ground floor is closed for renovation this week ☕.",
    "Thanks again — this was really helpful!",
    "Attached you will find the minutes of the steering committee.",
    "Nous avons besoin de votre validation avant lundi.",
    "The build is green again after the dependency upgrade.",
    "Kindly review the draft and add your comments inline.",
]
CATEGORIES = [["Blue category"], ["Red category"], ["Projet α"], ["Finance", "Follow up"], ["顧客"]]

ATTACHMENT_KINDS = [
    ("Quarterly report {n}.pdf", "application/pdf", b"%PDF-1.7\n"),
    ("Résumé {n}.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"PK\x03\x04"),
    ("報告書_{n}.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b"PK\x03\x04"),
    ("photo {n} 🌅.jpg", "image/jpeg", b"\xff\xd8\xff\xe0"),
    ("diagram-{n}.png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ("notes_{n}.txt", "text/plain", b"graphsim notes\n"),
    ("invite-{n}.ics", "text/calendar", b"BEGIN:VCALENDAR\r\n"),
    ("archive-{n}.zip", "application/zip", b"PK\x03\x04"),
]


@dataclass(frozen=True)
class Person:
    name: str
    address: str

    def as_graph(self) -> dict:
        return {"emailAddress": {"name": self.name, "address": self.address}}


@dataclass
class AttachmentSpec:
    """One attachment: metadata plus where its bytes come from (explicit bytes or a pattern)."""
    name: str
    content_type: str
    size: int
    kind: str = "file"  # "file" or "item"
    is_inline: bool = False
    content_id: str | None = None
    content: bytes | None = None  # explicit bytes (added messages); otherwise derived from pattern_seed
    pattern_seed: int = 0
    magic: bytes = b""
    last_modified: int = 0


@dataclass
class BodySpec:
    """A body: generated from a seed (size class decided by the seed), or explicit HTML/text."""
    seed: int | None = None
    html: str | None = None
    text: str | None = None
    inline_cids: tuple[str, ...] = ()


@dataclass
class MessageContent:
    subject: str
    sender: Person
    to: list[Person]
    cc: list[Person]
    bcc: list[Person]
    reply_to: list[Person]
    sent_offset: int  # seconds between sentDateTime and receivedDateTime
    importance: str
    categories: list[str]
    flag: str
    inference: str
    is_read: bool
    is_draft: bool
    delivery_receipt: bool
    read_receipt: bool
    internet_message_id: str
    body: BodySpec
    attachments: list[AttachmentSpec] = field(default_factory=list)


def owner_person(seed: int, upn: str) -> Person:
    local = upn.split("@", 1)[0]
    first = re.sub(r"[._\-]+", " ", local).strip().title() or "User"
    last = LAST_NAMES[h64(seed, upn, "owner") % len(LAST_NAMES)]
    return Person(f"{first} {last}", upn)


def contact(seed: int, upn: str, n: int) -> Person:
    r = rng(seed, upn, "contact", n)
    roll = r.random()
    if roll < 0.12:
        name = r.choice(CJK_NAMES)
    elif roll < 0.16:
        name = r.choice(EMOJI_NAMES)
    else:
        name = f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}"
    ascii_local = re.sub(r"[^a-z]", "", _fold(name.lower())) or f"user{n}"
    return Person(name, f"{ascii_local}{n % 97}@{r.choice(DOMAINS)}")


def _fold(text: str) -> str:
    import unicodedata
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def thread_root(seed: int, upn: str, key: int) -> int:
    """Messages come in short threads: a message belongs to the thread of a nearby earlier one."""
    back = h64(seed, upn, "thread", key) % 5
    return max(0, key - back) if back < 3 else key


def base_subject(seed: int, upn: str, root: int) -> str:
    r = rng(seed, upn, "subject", root)
    return r.choice(SUBJECTS).format(n=r.randint(1000, 99999), w=r.randint(1, 52), co=r.choice(COMPANIES))


def generate(seed: int, upn: str, key: int, folder_role: str, owner: Person, is_read: bool,
             big_attachment_every: int, attachment_rate: float) -> MessageContent:
    """Content of message `key` first filed in a folder of the given role.

    `is_read` comes from the mailbox layout (it must be countable for all messages without
    generating them); everything else is derived here.
    """
    r = rng(seed, upn, "msg", key)
    root = thread_root(seed, upn, key)
    subject = base_subject(seed, upn, root)
    if root != key:
        subject = ("RE: " if r.random() < 0.8 else "FW: ") + subject
    others = [contact(seed, upn, r.randint(0, 59)) for _ in range(r.randint(1, 4))]
    if folder_role in ("sentitems", "drafts", "outbox"):
        sender, to, cc = owner, others[:2], others[2:]
    else:
        sender = others[0]
        to = [owner] + (others[1:2] if r.random() < 0.3 else [])
        cc = others[2:]
    bcc = [contact(seed, upn, 60 + r.randint(0, 9))] if folder_role == "sentitems" and r.random() < 0.05 else []
    reply_to = [contact(seed, upn, r.randint(0, 59))] if r.random() < 0.04 else []
    roll = r.random()
    importance = "high" if roll < 0.05 else "low" if roll < 0.08 else "normal"
    categories = list(r.choice(CATEGORIES)) if r.random() < 0.1 else []
    roll = r.random()
    flag = "flagged" if roll < 0.05 else "complete" if roll < 0.07 else "notFlagged"
    inference = "focused" if folder_role != "junkemail" and r.random() < 0.85 else "other"
    mid_host = f"{r.choice(['DM6PR11MB', 'AM0PR07MB', 'PAXPR08MB', 'SN6PR2101MB'])}{r.randint(1000, 9999)}"
    internet_message_id = f"<{mid_host}{h64(seed, upn, 'mid', key):016X}@{mid_host}.prod.outlook.com>"
    body = BodySpec(seed=h64(seed, upn, "body", key))
    attachments: list[AttachmentSpec] = []
    if big_attachment_every and key % big_attachment_every == 13 % big_attachment_every:
        attachments.append(_attachment(r, seed, upn, key, 0, big=True))
    elif r.random() < attachment_rate:
        for index in range(r.choice([1, 1, 1, 2, 3])):
            attachments.append(_attachment(r, seed, upn, key, index, big=False))
        if r.random() < 0.05:
            attachments.append(AttachmentSpec(
                name="Forwarded message", content_type="message/rfc822", size=0, kind="item",
                pattern_seed=h64(seed, upn, "item", key)))
    if r.random() < 0.06:
        cid = f"image{key:x}@{h64(seed, upn, 'cid', key) & 0xffffffff:08X}"
        attachments.append(AttachmentSpec(
            name="image001.png", content_type="image/png", size=r.randint(2_000, 40_000), is_inline=True,
            content_id=cid, pattern_seed=h64(seed, upn, "inline", key), magic=b"\x89PNG\r\n\x1a\n"))
        body.inline_cids = (cid,)
    for a in attachments:
        if a.kind == "item":
            a.size = len(item_attachment_mime(a))
    return MessageContent(
        subject=subject, sender=sender, to=to, cc=cc, bcc=bcc, reply_to=reply_to,
        sent_offset=r.randint(1, 180), importance=importance, categories=categories, flag=flag,
        inference=inference, is_read=is_read, is_draft=folder_role == "drafts",
        delivery_receipt=r.random() < 0.02, read_receipt=r.random() < 0.03,
        internet_message_id=internet_message_id, body=body, attachments=attachments)


def _attachment(r: random.Random, seed: int, upn: str, key: int, index: int, big: bool) -> AttachmentSpec:
    template, content_type, magic = r.choice(ATTACHMENT_KINDS)
    if big:
        size = r.randint(ATTACHMENT_INLINE_LIMIT + 200_000, 6 * 1024 * 1024)
    else:
        roll = r.random()
        size = (r.randint(1_500_000, ATTACHMENT_INLINE_LIMIT - 100_000) if roll < 0.05
                else r.randint(20_000, 400_000) if roll < 0.4 else r.randint(300, 20_000))
    return AttachmentSpec(name=template.format(n=r.randint(1, 999)), content_type=content_type, size=size,
                          pattern_seed=h64(seed, upn, "att", key, index), magic=magic)


# ---------------------------------------------------------------------------------- bodies

def _paragraphs(body_seed: int, limit: int | None = None) -> list[str]:
    r = random.Random(body_seed)
    roll = r.random()
    count = r.randint(30, 140) if roll < 0.08 else r.randint(5, 20) if roll < 0.3 else r.randint(1, 4)
    if limit is not None:
        count = min(count, limit)
    return [" ".join(r.choice(SENTENCES) for _ in range(r.randint(1, 5))) for _ in range(count)]


def render_html(body: BodySpec) -> str:
    if body.html is not None:
        return body.html
    if body.text is not None and body.seed is None:
        return "<html><body><p>" + html.escape(body.text).replace("\n", "<br>") + "</p></body></html>"
    parts = [
        '<html><head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '<style type="text/css" style="display:none">P {margin-top:0;margin-bottom:0;}</style>'
        '</head><body dir="ltr">'
    ]
    for i, p in enumerate(_paragraphs(body.seed or 0)):
        parts.append(f'<div style="font-family: Aptos, Calibri, Helvetica, sans-serif; font-size: 12pt;">'
                     f'{html.escape(p)}</div>\r\n')
        if i % 12 == 11:
            parts.append('<table border="1" cellpadding="4"><tr><th>Item</th><th>Montant</th></tr>'
                         f'<tr><td>Ligne {i}</td><td>{(i * 37) % 1000},00 €</td></tr></table>\r\n')
    for cid in body.inline_cids:
        parts.append(f'<p><img src="cid:{cid}" alt="image001.png"></p>')
    parts.append("</body></html>")
    return "".join(parts)


_TAG = re.compile(r"<[^>]+>")


def render_text(body: BodySpec) -> str:
    if body.text is not None:
        return body.text
    if body.html is not None:
        text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>", "\r\n", body.html)
        text = re.sub(r"(?is)<(style|script|head)[^>]*>.*?</\1>", "", text)
        return html.unescape(_TAG.sub("", text)).strip()
    return "\r\n\r\n".join(_paragraphs(body.seed or 0))


def preview(body: BodySpec) -> str:
    if body.seed is not None and body.html is None and body.text is None:
        text = " ".join(_paragraphs(body.seed, limit=2))
    else:
        text = render_text(body)
    return " ".join(text.split())[:255]


# ---------------------------------------------------------------------------------- attachment bytes

_BLOCK = 64 * 1024


def _pattern_block(spec: AttachmentSpec) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < _BLOCK:
        out += hashlib.blake2b(f"{spec.pattern_seed}:{counter}".encode(), digest_size=64).digest()
        counter += 1
    return bytes(out[:_BLOCK])


def attachment_chunks(spec: AttachmentSpec, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
    """The attachment's bytes, streamed: a magic header, then a repeated deterministic pattern."""
    if spec.kind == "item":
        yield item_attachment_mime(spec)
        return
    if spec.content is not None:
        for i in range(0, len(spec.content), chunk_size):
            yield spec.content[i:i + chunk_size]
        return
    head = spec.magic[:spec.size]
    block = _pattern_block(spec)
    remaining = spec.size - len(head)
    buf = bytearray(head)
    offset = 0
    while remaining > 0 or buf:
        while remaining > 0 and len(buf) < chunk_size:
            take = min(remaining, chunk_size - len(buf), _BLOCK - offset)
            buf += block[offset:offset + take]
            offset = (offset + take) % _BLOCK
            remaining -= take
        yield bytes(buf)
        buf = bytearray()


def attachment_bytes(spec: AttachmentSpec) -> bytes:
    return b"".join(attachment_chunks(spec))


def item_attachment_mime(spec: AttachmentSpec) -> bytes:
    """An attached (forwarded) message, as the MIME text that its `$value` returns."""
    r = random.Random(spec.pattern_seed)
    sender = f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}"
    body = " ".join(r.choice(SENTENCES) for _ in range(r.randint(2, 8)))
    from email.header import Header
    lines = [
        f"From: {Header(sender, 'utf-8').encode()} <forwarded{spec.pattern_seed % 1000}@{r.choice(DOMAINS)}>",
        f"Subject: {Header(r.choice(SUBJECTS).format(n=1, w=1, co='Contoso'), 'utf-8').encode()}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 8bit",
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")
