"""The mailbox run orchestration's decisions, replayed through the real SDK with hand-fed
activity results (no runtime, no storage): how many pages are in flight, when it pauses, when
it finishes or goes on as a new execution."""
from __future__ import annotations

import json

from devhost.durable import actions as act
from devhost.durable.history import EventType, event
from orchestrators import extraction
from tests.unit.orchestrators.replaying import Run, scheduled as _scheduled

RUN = {"connection_id": "c1", "run_id": "r1"}


def _run() -> Run:
    return Run("extract_mailbox", RUN)


def _begin(run: Run, **result):
    run.start()
    return run.episode(run.done(0, {"proceed": True, "status": "in_progress", "active": [], **result}))


IN_FLIGHT = extraction.STREAMS_IN_FLIGHT


def test_streams_page_at_once_and_a_finished_folder_makes_room_for_the_next():
    run = _run()
    first = _scheduled(_begin(run))
    assert [(name, data["stream"]) for _, name, data in first] == [("extract_page", None)] * IN_FLIGHT
    ids = [task_id for task_id, _, _ in first]
    # Stream 0 has more pages: it continues; stream 1 ended: the next folder is claimed.
    more = _scheduled(run.episode(run.done(ids[0], {"stream": 0, "stream_done": False, "status": "in_progress"})))
    assert [(name, data["stream"]) for _, name, data in more] == [("extract_page", 0)]
    claim = _scheduled(run.episode(run.done(ids[1], {"stream": 1, "stream_done": True, "status": "in_progress"})))
    assert [(name, data["stream"]) for _, name, data in claim] == [("extract_page", None)]


def test_steps_read_several_pages_and_the_steps_in_flight_when_an_execution_stops_read_one():
    run = _run()
    in_flight = [(task_id, index) for index, (task_id, _, _) in enumerate(_scheduled(_begin(run)))]
    asked = [extraction.PAGES_PER_STEP] * IN_FLIGHT
    completed = 0
    while not run.result.is_done:  # every step leaves its stream with more pages
        task_id, stream = in_flight.pop(0)
        more = _scheduled(run.episode(run.done(task_id, {"stream": stream, "stream_done": False, "pages": 3,
                                                         "status": "in_progress"})))
        completed += 1
        in_flight += [(next_id, data["stream"]) for next_id, _, data in more]
        asked += [data["pages"] for _, _, data in more]
    # no new step once STEPS_PER_EXECUTION have ended; the ones in flight end, then a new execution
    assert completed == len(asked) == extraction.STEPS_PER_EXECUTION + IN_FLIGHT - 1
    assert run.result.actions[-1]["actionType"] == act.CONTINUE_AS_NEW
    several = extraction.STEPS_PER_EXECUTION - 2 * IN_FLIGHT
    assert asked == [extraction.PAGES_PER_STEP] * several + [1] * (len(asked) - several)


def test_a_batch_run_keeps_as_many_steps_in_flight_as_its_input_says_in_every_execution():
    run = Run("extract_mailbox", {**RUN, "streams": 4})
    in_flight = [(task_id, index) for index, (task_id, _, _) in enumerate(_scheduled(_begin(run)))]
    assert len(in_flight) == 4
    asked = [extraction.PAGES_PER_STEP] * 4
    while not run.result.is_done:  # every step leaves its stream with more pages
        task_id, stream = in_flight.pop(0)
        more = _scheduled(run.episode(run.done(task_id, {"stream": stream, "stream_done": False, "pages": 3,
                                                         "status": "in_progress"})))
        in_flight += [(next_id, data["stream"]) for next_id, _, data in more]
        asked += [data["pages"] for _, _, data in more]
        assert len(in_flight) <= 4
    several = extraction.STEPS_PER_EXECUTION - 2 * 4
    assert asked == [extraction.PAGES_PER_STEP] * several + [1] * (len(asked) - several)
    assert run.result.actions[-1]["actionType"] == act.CONTINUE_AS_NEW
    assert json.loads(run.result.actions[-1]["input"]) == {**RUN, "streams": 4}


def test_pause_lets_pages_in_flight_finish_then_pauses_and_continues_as_new():
    run = _run()
    ids = [task_id for task_id, _, _ in _scheduled(_begin(run))]
    assert run.episode(event(EventType.EventRaised, run.now, Name="pause", Input=None)) == []
    for index, task_id in enumerate(ids[:-1]):  # no new page starts while pausing
        assert _scheduled(run.episode(run.done(task_id, {"stream": index, "stream_done": False,
                                                          "status": "pausing"}))) == []
    last = _scheduled(run.episode(run.done(ids[-1], {"stream": IN_FLIGHT - 1, "stream_done": False,
                                                      "status": "pausing"})))
    assert [name for _, name, _ in last] == ["pause_extraction"]
    run.episode(run.done(last[0][0], True))
    run.episode(event(EventType.EventRaised, run.now, Name="continue", Input=None))
    assert run.result.is_done and run.result.actions[-1]["actionType"] == act.CONTINUE_AS_NEW


def test_all_folders_claimed_and_done_finishes_or_resumes_leftover_streams():
    run = _run()
    ids = [task_id for task_id, _, _ in _scheduled(_begin(run))]
    for task_id in ids[:-1]:
        assert _scheduled(run.episode(run.done(task_id, {"exhausted": True, "status": "in_progress"}))) == []
    finish = _scheduled(run.episode(run.done(ids[-1], {"stream": 0, "stream_done": True, "status": "in_progress"})))
    assert [name for _, name, _ in finish] == ["finish_extraction"]
    run.episode(run.done(finish[0][0], {"resume": True, "status": "in_progress"}))
    assert run.result.is_done and run.result.actions[-1]["actionType"] == act.CONTINUE_AS_NEW


def test_a_new_execution_resumes_the_active_streams_first():
    run = _run()
    resumed = _scheduled(_begin(run, active=[2, 5]))
    assert [data["stream"] for _, _, data in resumed] == [2, 5] + [None] * (IN_FLIGHT - 2)


def test_a_claim_told_to_wait_for_a_mark_claims_again_only_when_a_stream_ends():
    run = _run()
    ids = [task_id for task_id, _, _ in _scheduled(_begin(run, active=[0]))]  # stream 0: a mark
    # every claim is told to wait (the next streams are windows of the mark's folder)
    for task_id in ids[1:]:
        assert _scheduled(run.episode(run.done(task_id, {"wait": True, "status": "in_progress"}))) == []
    more = _scheduled(run.episode(run.done(ids[0], {"stream": 0, "stream_done": False, "status": "in_progress"})))
    assert [data["stream"] for _, _, data in more] == [0]  # the mark goes on, nothing else is claimed
    ended = _scheduled(run.episode(run.done(more[0][0], {"stream": 0, "stream_done": True, "status": "in_progress"})))
    assert [data["stream"] for _, _, data in ended] == [None] * IN_FLIGHT  # the windows can be claimed now


def test_a_step_that_ended_a_stream_and_went_on_with_the_next_lets_waiting_claims_go_again():
    run = _run()
    ids = [task_id for task_id, _, _ in _scheduled(_begin(run, active=[0]))]  # stream 0: a mark
    for task_id in ids[1:]:
        assert _scheduled(run.episode(run.done(task_id, {"wait": True, "status": "in_progress"}))) == []
    # the mark's step ended it, claimed stream 3 and read a page of it
    went_on = _scheduled(run.episode(run.done(ids[0], {"stream": 3, "stream_done": False, "streams_ended": 1,
                                                         "status": "in_progress"})))
    assert [data["stream"] for _, _, data in went_on] == [3] + [None] * (IN_FLIGHT - 1)
