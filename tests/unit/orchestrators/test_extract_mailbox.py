"""The mailbox run orchestration's decisions, replayed through the real SDK with hand-fed
activity results (no runtime, no storage): which lanes each wave runs, when it pauses, when it
finishes, retries or goes on as a new execution."""
from __future__ import annotations

import json

from devhost.durable import actions as act
from devhost.durable.history import EventType, event
from orchestrators import extraction
from tests.unit.orchestrators.replaying import Run, scheduled as _scheduled

RUN = {"connection_id": "c1", "run_id": "r1"}
UPN = "alice@contoso.com"
LANES = extraction.LANES_PER_MAILBOX


def _run(run_input=None) -> Run:
    return Run("extract_mailbox", run_input or RUN)


def _begin(run: Run, mailboxes=(UPN,), active=(), active_mailboxes=None):
    run.start()
    return _scheduled(run.episode(run.done(0, {
        "proceed": True, "status": "in_progress", "active": list(active), "mailboxes": list(mailboxes),
        "active_mailboxes": list(active_mailboxes if active_mailboxes is not None else [mailboxes[0]] * len(active))})))


def _lanes(commands):
    return [(data["stream"], data["mailbox"]) for _, name, data in commands if name == extraction.LANE_ACTIVITY]


def _end(run: Run, wave, ends):
    """Complete every lane of a wave at once (task_all); the commands of the next episode."""
    return _scheduled(run.episode(*[run.done(task_id, end) for (task_id, _, _), end in zip(wave, ends)]))


def test_a_wave_runs_four_lanes_of_the_mailbox_and_the_next_goes_on_with_unfinished_streams():
    run = _run()
    wave = _begin(run)
    assert _lanes(wave) == [(None, UPN)] * LANES
    following = _end(run, wave, [{"stream": 0, "stream_done": False, "status": "in_progress"},
                                 {"stream": 1, "stream_done": True, "status": "in_progress"},
                                 {"stream": 2, "stream_done": False, "status": "in_progress"},
                                 {"wait": True, "status": "in_progress"}])
    assert _lanes(following) == [(0, UPN), (2, UPN), (None, UPN), (None, UPN)]


def test_nothing_is_scheduled_until_every_lane_of_the_wave_has_ended():
    run = _run()
    wave = _begin(run)
    for task_id, _, _ in wave[:-1]:
        assert _scheduled(run.episode(run.done(task_id, {"stream": 0, "stream_done": False,
                                                         "status": "in_progress"}))) == []
    assert len(_lanes(_scheduled(run.episode(run.done(wave[-1][0], {"exhausted": True, "status": "in_progress"}))))) == 3


def test_a_batch_run_runs_as_many_lanes_as_its_input_says():
    run = _run({**RUN, "streams": 2})
    assert _lanes(_begin(run)) == [(None, UPN)] * 2


def test_every_mailbox_exhausted_and_no_stream_left_finishes():
    run = _run()
    wave = _begin(run)
    finish = _end(run, wave, [{"exhausted": True, "status": "in_progress"}] * (LANES - 1)
                  + [{"stream": 3, "stream_done": True, "exhausted": True, "status": "in_progress"}])
    assert [name for _, name, _ in finish] == ["finish_extraction"]
    run.episode(run.done(finish[0][0], {"status": "completed", "messages_extracted": 9}))
    assert run.result.is_done and run.result.output == {"status": "completed", "messages_extracted": 9}


def test_finish_asking_to_resume_streams_left_active_goes_on_as_a_new_execution():
    run = _run()
    finish = _end(run, _begin(run), [{"exhausted": True, "status": "in_progress"}] * LANES)
    run.episode(run.done(finish[0][0], {"resume": True, "status": "in_progress"}))
    assert run.result.is_done and run.result.actions[-1]["actionType"] == act.CONTINUE_AS_NEW


def test_pause_read_by_a_lane_ends_the_waves_then_pauses_and_continues_as_new():
    run = _run()
    wave = _begin(run)
    paused = _end(run, wave, [{"stream": i, "stream_done": False, "status": "pausing"} for i in range(LANES)])
    assert [name for _, name, _ in paused] == ["pause_extraction"]
    run.episode(run.done(paused[0][0], True))
    run.episode(event(EventType.EventRaised, run.now, Name="continue", Input=None))
    assert run.result.is_done and run.result.actions[-1]["actionType"] == act.CONTINUE_AS_NEW
    assert json.loads(run.result.actions[-1]["input"]) == RUN


def test_after_its_waves_an_execution_goes_on_as_a_new_one():
    run = _run()
    wave = _begin(run)
    for _ in range(extraction.WAVES_PER_EXECUTION):
        wave = _end(run, wave, [{"stream": i, "stream_done": False, "status": "in_progress"} for i in range(LANES)])
    assert wave == [] and run.result.actions[-1]["actionType"] == act.CONTINUE_AS_NEW


def test_a_new_execution_goes_on_with_the_active_streams_of_each_mailbox_first():
    run = _run()
    wave = _begin(run, mailboxes=("a", "b"), active=(2, 5, 7, 8, 9, 11), active_mailboxes=("b", "a", "b", "b", "b", "b"))
    # b had 5 active streams (an older execution): 4 lanes now, the fifth waits in the checkpoint
    assert _lanes(wave) == [(2, "b"), (5, "a"), (7, "b"), (8, "b"), (9, "b"), (None, "a"), (None, "a"), (None, "a")]


def test_a_sync_of_two_mailboxes_runs_four_lanes_of_each_and_ends_when_both_are_exhausted():
    run = _run()
    wave = _begin(run, mailboxes=("a", "b"))
    assert _lanes(wave) == [(None, "a")] * LANES + [(None, "b")] * LANES
    ends = [{"exhausted": True, "status": "in_progress"}] * LANES + \
        [{"stream": 4, "stream_done": False, "status": "in_progress"}] + [{"wait": True, "status": "in_progress"}] * 3
    following = _end(run, wave, ends)
    assert _lanes(following) == [(4, "b")] + [(None, "b")] * 3  # a claims no more
    done = _end(run, following, [{"stream": 4, "stream_done": True, "exhausted": True, "status": "in_progress"}]
                + [{"exhausted": True, "status": "in_progress"}] * 3)
    assert [name for _, name, _ in done] == ["finish_extraction"]


def test_a_run_stopped_meanwhile_ends_without_finishing():
    run = _run()
    stopped = _end(run, _begin(run), [{"stream_done": True, "stopped": True}] * LANES)
    assert stopped == [] and run.result.is_done and run.result.output == {"status": "stopped"}
