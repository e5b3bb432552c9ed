"""The app of test_purge_by_id.py's pending-terminate test.

`slow_episodes` schedules one activity, and every episode after that activity's result takes
`seconds` (the replay sleeps): a terminate sent during such an episode waits in the instance's
queue, and the instance says Running, until the episode ends and the next one takes it.
"""
import time

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def slow_episodes(context: df.DurableOrchestrationContext):
    seconds = context.get_input()
    yield context.call_activity("noop", None)
    time.sleep(seconds)
    return (yield context.wait_for_external_event("go"))


@app.activity_trigger(input_name="unused")
def noop(unused) -> None:
    return None
