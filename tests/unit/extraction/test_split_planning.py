"""Splitting big folders into date windows, and claiming streams in order around their marks."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mailextract.extraction import planning as P

UTC = timezone.utc
OLDEST, NEWEST = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 5, tzinfo=UTC)


def _stream(folder: str, total: int, mode: str = "delta", delta_link: str | None = None) -> dict:
    return {"upn": "a@contoso.com", "id": folder, "path": folder, "total": total, "mode": mode,
            "delta_link": delta_link}


def test_windows_are_half_open_contiguous_and_open_at_both_ends():
    assert P.time_windows(OLDEST, NEWEST, 4) == [
        (None, "2024-01-02T00:00:00.000000Z"),
        ("2024-01-02T00:00:00.000000Z", "2024-01-03T00:00:00.000000Z"),
        ("2024-01-03T00:00:00.000000Z", "2024-01-04T00:00:00.000000Z"),
        ("2024-01-04T00:00:00.000000Z", None)]


def test_windows_inside_a_runs_own_date_window_keep_its_bounds():
    after, before = datetime(2023, 12, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    windows = P.time_windows(OLDEST, NEWEST, 2, after=after, before=before)
    assert windows == [("2023-12-01T00:00:00.000000Z", "2024-01-03T00:00:00.000000Z"),
                       ("2024-01-03T00:00:00.000000Z", "2024-02-01T00:00:00.000000Z")]


@pytest.mark.parametrize("oldest, newest, count", [(OLDEST, OLDEST, 4), (NEWEST, OLDEST, 4), (OLDEST, NEWEST, 1)])
def test_a_folder_whose_messages_share_one_moment_is_one_window(oldest, newest, count):
    assert P.time_windows(oldest, newest, count) == [(None, None)]


@pytest.mark.parametrize("total, count", [(2_000, 2), (2_999, 2), (5_000, 5), (1_000_000, P.MAX_WINDOWS)])
def test_window_count_grows_with_the_folder(total, count):
    assert P.MESSAGES_PER_WINDOW == 1_000
    assert P.window_count(total) == count


@pytest.mark.parametrize("stream, split", [
    (_stream("f", P.SPLIT_MIN_MESSAGES), True),
    (_stream("f", P.SPLIT_MIN_MESSAGES - 1), False),
    (_stream("f", 50_000, delta_link="https://graph/delta?token"), False),  # incremental: only changes
    (_stream("f", 50_000, mode="list"), True),
    (_stream("f", None), False),
])
def test_which_folders_are_split(stream, split):
    assert P.needs_split(stream) is split


def test_arrange_puts_marks_first_then_streams_largest_first():
    streams = [_stream("small", 300), _stream("inbox", 3_000), _stream("listed", 2_000, mode="list"),
               _stream("sent", 900)]
    windows = {1: [(None, "t1"), ("t1", None)], 2: [(None, "t2"), ("t2", None)]}
    plan = P.arrange(streams, windows, "run-1")
    assert [(s["id"], s["mode"], s.get("total")) for s in plan] == [
        ("inbox", "mark", 3_000),
        ("inbox", "window", 1_500), ("inbox", "window", 1_500),
        ("listed", "window", 1_000), ("listed", "window", 1_000),
        ("sent", "delta", 900), ("small", "delta", 300)]
    assert [(s.get("after"), s.get("round")) for s in plan[1:5]] == [
        (0, "run-1.0.w"), (0, "run-1.0.w"), (None, None), (None, None)]  # a listing has no mark
    assert plan[0]["round"] == "run-1.0.w" and P.folders_in(plan) == 4


def _checkpoint(**fields) -> dict:
    return {"next": 0, "active": {}, **fields}


def test_claims_skip_windows_while_their_mark_is_read_and_wait_when_only_those_are_left():
    plan = [{"mode": "mark"}, {"mode": "window", "after": 0}, {"mode": "delta"}, {"mode": "window", "after": 0}]
    checkpoint = _checkpoint()
    assert P.next_claim(plan, checkpoint) == 0
    P.claim(checkpoint, 0)
    assert P.next_claim(plan, checkpoint) == 2  # the windows wait for the mark
    P.claim(checkpoint, 2)
    assert (checkpoint["next"], checkpoint["ahead"]) == (1, [2])
    assert P.next_claim(plan, checkpoint) == P.WAIT
    del checkpoint["active"]["0"]  # the mark is read
    assert P.next_claim(plan, checkpoint) == 1
    P.claim(checkpoint, 1)
    assert (checkpoint["next"], checkpoint["ahead"]) == (3, [])
    P.claim(checkpoint, P.next_claim(plan, checkpoint))
    assert P.next_claim(plan, checkpoint) is None and checkpoint["next"] == 4


def test_a_folder_is_done_when_every_one_of_its_streams_is():
    plan = [{"upn": "a", "id": "inbox"}, {"upn": "a", "id": "inbox"}, {"upn": "a", "id": "sent"}]
    checkpoint = _checkpoint(next=1, ahead=[2], active={"0": {}, "2": {}})
    assert P.folders_done(plan, checkpoint) == 0
    checkpoint["active"] = {}
    assert P.folders_done(plan, checkpoint) == 1  # sent; inbox still has an unclaimed window
    P.claim(checkpoint, 1)
    del checkpoint["active"]["1"]
    assert P.folders_done(plan, checkpoint) == 2


def test_a_claim_for_one_mailbox_takes_only_its_streams_and_says_none_when_it_has_no_more():
    plan = [{"upn": "a", "mode": "delta"}, {"upn": "b", "mode": "mark"}, {"upn": "b", "mode": "window", "after": 1},
            {"upn": "a", "mode": "delta"}]
    checkpoint = _checkpoint()
    assert P.next_claim(plan, checkpoint, "b") == 1
    P.claim(checkpoint, 1)
    assert P.next_claim(plan, checkpoint, "b") == P.WAIT  # b's window waits for b's mark
    assert P.next_claim(plan, checkpoint, "a") == 0
    P.claim(checkpoint, 0)
    assert P.next_claim(plan, checkpoint, "a") == 3
    P.claim(checkpoint, 3)
    assert P.next_claim(plan, checkpoint, "a") is None
    assert P.next_claim(plan, checkpoint) == P.WAIT
