"""Keep using a client after the service forgot its session (as after a long idle time)."""

# ruff: noqa: F401
import json
import sys

from pyspalloc import SpallocClient, SpallocState  # IMPORTS

url, user, password = sys.argv[1:4]


def attempt(action):
    try:
        return {"value": action()}
    except Exception as error:
        return {"error": type(error).__name__, "is_value_error": isinstance(error, ValueError)}


client = SpallocClient(url, user, password)
result = {"before": attempt(lambda: sorted(client.list_machines()))}
print(json.dumps({"checkpoint": "forget sessions"}), flush=True)
sys.stdin.readline()  # the service has dropped every session
result["list_machines"] = attempt(lambda: sorted(client.list_machines()))


def create_and_destroy():
    job = client.create_job(1)
    job.destroy()
    return job.get_state().name


result["create_job"] = attempt(create_and_destroy)
client.close()
print(json.dumps({"result": result, "types": {}}), flush=True)
