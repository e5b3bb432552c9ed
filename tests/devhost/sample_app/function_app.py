"""A sample DFApp that exercises every feature devhost supports, driven by tests/devhost/.

Not part of the product: it exists so devhost can be tested against real SDK behaviour.
Activities that must fail a set number of times count their attempts in files (devhost runs
the app in several worker processes, as Azure runs it on several instances, so a count kept in
one process would miss the attempts another one made).
"""
import asyncio
import fcntl
import json
import os
import tempfile
import threading
import time
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, UpdateMode

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
_attempts_lock = threading.Lock()
_replays: dict[str, int] = {}
_in_flight = {"now": 0, "max": 0}


ATTEMPTS_DIR = os.path.join(tempfile.gettempdir(), "devhost-sample-attempts")


def _count_attempt(key: str) -> int:
    """This attempt's number for `key`, counted across the worker processes."""
    os.makedirs(ATTEMPTS_DIR, exist_ok=True)
    path = os.path.join(ATTEMPTS_DIR, "".join(c if c.isalnum() or c in "-_." else "_" for c in key))
    with _attempts_lock, open(path, "a+", encoding="utf-8") as marks:
        fcntl.flock(marks, fcntl.LOCK_EX)
        marks.write("x\n")
        marks.flush()
        marks.seek(0)
        return len(marks.read().splitlines())


def _json(body, status=200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


# ---- plain HTTP ---------------------------------------------------------------------------
@app.route(route="hello/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"Hello, {req.route_params['name']}!")


@app.route(route="items/{id:int}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"id": int(req.route_params["id"]), "kind": "by-id"})


@app.route(route="items/latest", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def item_latest(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"kind": "latest"})


@app.route(route="greet/{name?}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def greet(req: func.HttpRequest) -> str:
    return f"hi {req.route_params.get('name') or 'stranger'}"


@app.route(route="echo", methods=["POST", "PUT"], auth_level=func.AuthLevel.ANONYMOUS)
async def echo(req: func.HttpRequest) -> func.HttpResponse:
    body = {"method": req.method, "params": dict(req.params),
            "header": req.headers.get("x-test"), "body": req.get_body().decode("utf-8"),
            "url": req.url}
    return func.HttpResponse(json.dumps(body), status_code=201, mimetype="application/json",
                             headers={"X-Echo": "yes"})


@app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret internal detail")


@app.route(route="slow", auth_level=func.AuthLevel.ANONYMOUS)
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(float(req.params.get("seconds", "2")))
    return func.HttpResponse("slept")


@app.route(route="blocking", auth_level=func.AuthLevel.ANONYMOUS)
def blocking(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(float(req.params.get("seconds", "2")))
    return func.HttpResponse("blocked")


@app.route(route="keyed", methods=["GET"])
def keyed(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("function level ok")


@app.route(route="admin-only", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin level ok")


# ---- durable client over HTTP ---------------------------------------------------------------
@app.route(route="orchestrators/{name}/{instance_id?}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client) -> func.HttpResponse:
    body = req.get_body()
    payload = json.loads(body) if body else None
    instance_id = await client.start_new(req.route_params["name"], req.route_params.get("instance_id"), payload)
    return client.create_check_status_response(req, instance_id)


@app.route(route="instances/{instance_id}/events/{event}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def raise_event(req: func.HttpRequest, client) -> func.HttpResponse:
    body = req.get_body()
    await client.raise_event(req.route_params["instance_id"], req.route_params["event"],
                             json.loads(body) if body else None)
    return func.HttpResponse(status_code=202)


@app.route(route="instances/{instance_id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def get_status(req: func.HttpRequest, client) -> func.HttpResponse:
    status = await client.get_status(req.route_params["instance_id"],
                                     show_history=req.params.get("history") == "true")
    if status.runtime_status is None:
        return _json({"found": False}, 404)
    body = status.to_json()
    body["runtimeStatus"] = status.runtime_status.value
    return _json(body)


@app.route(route="instances/{instance_id}/{action:alpha}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def control(req: func.HttpRequest, client) -> func.HttpResponse:
    instance_id, action = req.route_params["instance_id"], req.route_params["action"]
    reason = req.params.get("reason", "by test")
    try:
        if action == "terminate":
            await client.terminate(instance_id, reason)
        elif action == "suspend":
            await client.suspend(instance_id, reason)
        elif action == "resume":
            await client.resume(instance_id, reason)
        else:
            return _json({"error": "unknown action"}, 400)
    except Exception as exc:  # the SDK raises plain Exception with the extension's message
        return _json({"error": str(exc)}, 409)
    return func.HttpResponse(status_code=202)


@app.route(route="instances/{instance_id}", methods=["DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def purge(req: func.HttpRequest, client) -> func.HttpResponse:
    result = await client.purge_instance_history(req.route_params["instance_id"])
    return _json({"deleted": result.instances_deleted})


@app.route(route="instances", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def list_instances(req: func.HttpRequest, client) -> func.HttpResponse:
    statuses = [df.OrchestrationRuntimeStatus(s) for s in req.params.get("status", "").split(",") if s]
    found = await client.get_status_by(runtime_status=statuses or None,
                                       instance_id_prefix=req.params.get("prefix"))
    if req.params.get("prefix"):
        found = [s for s in found if s.instance_id.startswith(req.params["prefix"])]
    return _json(sorted(s.instance_id for s in found))


# ---- orchestrators ------------------------------------------------------------------------
@app.orchestration_trigger(context_name="context")
def sequence(context: df.DurableOrchestrationContext):
    names = context.get_input() or ["Tokyo", "Seattle", "London"]
    results = []
    for name in names:
        results.append((yield context.call_activity("say_hello", name)))
    return results


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    count = context.get_input()
    values = yield context.task_all([context.call_activity("square", i) for i in range(count)])
    return sum(values)


@app.orchestration_trigger(context_name="context")
def retrying(context: df.DurableOrchestrationContext):
    spec = context.get_input()  # {"key", "failures", "attempts"}
    options = df.RetryOptions(first_retry_interval_in_milliseconds=200,
                              max_number_of_attempts=spec["attempts"])
    try:
        result = yield context.call_activity_with_retry("flaky", options, spec)
        return {"ok": result}
    except Exception as exc:
        return {"error": str(exc).split("\n")[0]}


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    spec = context.get_input()
    first = yield context.call_sub_orchestrator("sequence", ["A", "B"])
    second = yield context.call_sub_orchestrator_with_retry(
        "flaky_child", df.RetryOptions(200, 3), spec)
    try:
        yield context.call_sub_orchestrator("failing", None)
        third = "no error"
    except Exception as exc:
        third = str(exc).split("\n")[0]
    return {"first": first, "second": second, "third": third}


@app.orchestration_trigger(context_name="context")
def flaky_child(context: df.DurableOrchestrationContext):
    spec = context.get_input()
    attempt = yield context.call_activity("count_attempt", spec["key"])
    if attempt <= spec["failures"]:
        raise ValueError(f"child attempt {attempt} fails")
    return f"child succeeded on attempt {attempt}"


@app.orchestration_trigger(context_name="context")
def failing(context: df.DurableOrchestrationContext):
    raise ValueError("bad thing happened")
    yield  # pragma: no cover  (makes this a generator)


@app.orchestration_trigger(context_name="context")
def timer(context: df.DurableOrchestrationContext):
    seconds = context.get_input()
    start = context.current_utc_datetime
    yield context.create_timer(start + timedelta(seconds=seconds))
    return (context.current_utc_datetime - start).total_seconds()


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    seconds = context.get_input()
    deadline = context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
    approved = context.wait_for_external_event("approve")
    winner = yield context.task_any([approved, deadline])
    if winner == approved:
        deadline.cancel()
        return {"approved": approved.result}
    return {"approved": None, "timed_out": True}


@app.orchestration_trigger(context_name="context")
def wait_event(context: df.DurableOrchestrationContext):
    context.set_custom_status({"stage": "waiting"})
    value = yield context.wait_for_external_event("go")
    context.set_custom_status({"stage": "done"})
    return {"received": value, "type": type(value).__name__}


@app.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):
    state = context.get_input()  # {"n", "limit", "total"}
    if state["n"] >= state["limit"]:
        return state["total"]
    value = yield context.call_activity("square", state["n"])
    context.continue_as_new({"n": state["n"] + 1, "limit": state["limit"], "total": state["total"] + value})


@app.orchestration_trigger(context_name="context")
def long_run(context: df.DurableOrchestrationContext):
    count = context.get_input()
    total = 0
    for i in range(count):
        total += yield context.call_activity("slow_square", i)
        context.set_custom_status({"done": i + 1})
    return total


@app.orchestration_trigger(context_name="context")
def changes_its_mind(context: df.DurableOrchestrationContext):
    _replays[context.instance_id] = _replays.get(context.instance_id, 0) + 1
    name = "say_hello" if _replays[context.instance_id] == 1 else "square"
    yield context.call_activity(name, 2)
    yield context.call_activity("say_hello", "again")
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def concurrency_probe(context: df.DurableOrchestrationContext):
    yield context.task_all([context.call_activity("occupy_slot", i) for i in range(context.get_input())])
    return (yield context.call_activity("max_in_flight", None))


@app.orchestration_trigger(context_name="context")
def late_waiter(context: df.DurableOrchestrationContext):
    """Busy in an activity first, so an event raised meanwhile arrives before the wait."""
    yield context.call_activity("slow_square", 1)
    return (yield context.wait_for_external_event("go"))


@app.orchestration_trigger(context_name="context")
def launcher(context: df.DurableOrchestrationContext):
    """Starts another orchestration from an activity (durable client binding), without waiting on it."""
    return (yield context.call_activity("launch", context.get_input()))


# ---- activities ---------------------------------------------------------------------------
@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}!"


@app.activity_trigger(input_name="value")
def square(value: int) -> int:
    return value * value


@app.activity_trigger(input_name="value")
def slow_square(value: int) -> int:
    time.sleep(0.3)
    return value * value


@app.activity_trigger(input_name="spec")
def flaky(spec: dict) -> str:
    attempt = _count_attempt(spec["key"])
    if attempt <= spec["failures"]:
        raise RuntimeError(f"attempt {attempt} failed")
    return f"succeeded on attempt {attempt}"


@app.activity_trigger(input_name="index")
def occupy_slot(index: int) -> int:
    with _attempts_lock:
        _in_flight["now"] += 1
        _in_flight["max"] = max(_in_flight["max"], _in_flight["now"])
    time.sleep(0.4)
    with _attempts_lock:
        _in_flight["now"] -= 1
    return index


@app.activity_trigger(input_name="unused")
def max_in_flight(unused) -> int:
    return _in_flight["max"]


@app.activity_trigger(input_name="key")
def count_attempt(key: str) -> int:
    return _count_attempt(key)


@app.activity_trigger(input_name="target")
@app.durable_client_input(client_name="client")
async def launch(target: dict, client) -> dict:
    started = await client.start_new("sequence", target["instance_id"], target["cities"])
    status = await client.get_status(started)
    missing = await client.get_status(target["instance_id"] + "-none")
    return {"started": started, "status_known": status.runtime_status is not None,
            "missing_known": missing.runtime_status is not None}


# ---- timer trigger ------------------------------------------------------------------------
@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer", run_on_startup=True)
def tick(timer: func.TimerRequest) -> None:
    """Records each run (start, end, past_due) in a table; runs take longer than the period."""
    table = TableClient.from_connection_string(os.environ["AzureWebJobsStorage"], os.environ["TICK_TABLE"])
    try:
        table.create_table()
    except ResourceExistsError:
        pass
    started = time.time()
    time.sleep(float(os.environ.get("TICK_SECONDS", "1.5")))
    table.upsert_entity({"PartitionKey": "tick", "RowKey": f"{started:.6f}", "Start": started,
                         "End": time.time(), "PastDue": timer.past_due}, mode=UpdateMode.REPLACE)


# ---- worker processes (test_workers.py) --------------------------------------------------------
# Each worker process imports this module on its own, so this counter is per process, as module
# state is per instance in Azure.
_per_process = {"calls": 0}


@app.route(route="pid", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def process_id(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"pid": os.getpid()})


@app.orchestration_trigger(context_name="context")
def fan_out_to(context: df.DurableOrchestrationContext):
    """Calls one activity `count` times at once: input {"activity", "count", "input"}."""
    spec = context.get_input()
    return (yield context.task_all([context.call_activity(spec["activity"], spec.get("input"))
                                    for _ in range(spec["count"])]))


@app.orchestration_trigger(context_name="context")
def call_once(context: df.DurableOrchestrationContext):
    """Calls one activity once, then answers the pid of the process that replayed it last."""
    spec = context.get_input()
    result = yield context.call_activity(spec["activity"], spec.get("input"))
    return {"result": result, "replayed_in": os.getpid()}


@app.activity_trigger(input_name="unused")
def count_in_process(unused) -> dict:
    with _attempts_lock:
        _per_process["calls"] += 1
        return {"pid": os.getpid(), "count": _per_process["calls"]}


@app.activity_trigger(input_name="seconds")
def timed_sleep(seconds: float) -> dict:
    started = time.time()
    time.sleep(seconds)
    return {"pid": os.getpid(), "start": started, "end": time.time()}


@app.activity_trigger(input_name="spec")
def marked_sleep(spec: dict) -> int:
    """Appends its pid to the file spec["path"], then sleeps: a test can kill it mid-run."""
    with open(spec["path"], "a", encoding="utf-8") as marks:
        marks.write(f"{os.getpid()}\n")
    time.sleep(spec["seconds"])
    return os.getpid()


# ---- *_with_retry in a fan-out: SDK issue #603 (test_retry_fan_out.py) ---------------------------
@app.orchestration_trigger(context_name="context")
def retry_fan_out(context: df.DurableOrchestrationContext):
    """Three `call_activity_with_retry` tasks in task_any; once the first is done the other two
    are awaited, then two new ones are fanned out. Input {"dir", "stall", "retry_ms", "calls":
    {name: paced spec}}. After the first result the orchestrator blocks `stall` seconds, once
    (not while replaying), so that what arrives meanwhile reaches it in one episode."""
    spec = context.get_input()
    options = df.RetryOptions(first_retry_interval_in_milliseconds=spec["retry_ms"],
                              max_number_of_attempts=2)

    def call(name: str):
        return context.call_activity_with_retry(
            "paced", options, {"dir": spec["dir"], "name": name, **spec["calls"].get(name, {})})

    handles = [call("a"), call("b"), call("c")]
    first = yield context.task_any(handles)
    if not context.is_replaying:
        time.sleep(spec["stall"])
    pending = [task for task in handles if task is not first]
    while pending:
        pending.remove((yield context.task_any(pending)))
    more = yield context.task_all([call("d"), call("e")])
    return [task.result for task in handles] + more


@app.activity_trigger(input_name="spec")
def paced(spec: dict) -> str:
    """Sleeps spec["seconds"], then fails if spec["fail_first"] and this is its first attempt.
    Attempts are counted in the file spec["dir"]/spec["name"] (workers are separate processes)."""
    marks = os.path.join(spec["dir"], spec["name"])
    with open(marks, "a", encoding="utf-8") as out:
        out.write(f"{time.time()}\n")
    with open(marks, encoding="utf-8") as lines:
        attempt = len(lines.read().splitlines())
    time.sleep(spec.get("seconds", 0))
    if spec.get("fail_first") and attempt == 1:
        raise RuntimeError(f"{spec['name']} attempt {attempt} failed")
    return f"{spec['name']}#{attempt}"
