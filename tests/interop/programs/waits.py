"""Wait, with time limits, for a job that is queued behind another one."""

import json
import sys
import time

from pyspalloc import SpallocClient, SpallocState  # IMPORTS

url, user, password = sys.argv[1:4]


def attempt(action):
    """What an action gave or raised, and roughly how long it took."""
    start = time.monotonic()
    try:
        outcome = {"value": action()}
    except Exception as error:
        outcome = {"error": type(error).__name__}
    outcome["took_under_10s"] = time.monotonic() - start < 10
    return outcome


client = SpallocClient(url, user, password)
blocker = client.create_job_board(physical=(0, 0, 0), machine_name="solo")
blocker.wait_until_ready()
queued = client.create_job(1, machine_name="solo")
result = {"queued_state": queued.get_state().name}
result["wait_until_ready(timeout=3)"] = attempt(lambda: queued.wait_until_ready(timeout=3))
result["wait_for_state_change(QUEUED, timeout=3)"] = attempt(
    lambda: queued.wait_for_state_change(SpallocState.QUEUED, timeout=3).name
)
blocker.destroy()
result["after_blocker_destroyed"] = attempt(lambda: queued.wait_until_ready() or "READY")
result["state"] = queued.get_state().name
queued.destroy()
client.close()
print(json.dumps({"result": result, "types": {}}), flush=True)
