"""A client that logs in with a bearer token, before and after the service loses its session."""

# ruff: noqa: F401

import json
import sys

from pyspalloc import SpallocClient, SpallocState  # IMPORTS

url, token = sys.argv[1], sys.argv[4]


def attempt(action):
    try:
        return {"value": action()}
    except Exception as error:
        return {"error": type(error).__name__}


client = SpallocClient(url, bearer_token=token)
result = {"machines": sorted(client.list_machines())}
job = client.create_job(1)
job.wait_until_ready()
result["boards"] = len(job.get_connections())
result["state"] = job.get_state().name
print(json.dumps({"checkpoint": "forget sessions"}), flush=True)
sys.stdin.readline()  # the service has dropped every session
result["after_loss"] = {
    "get_state": attempt(lambda: job.get_state().name),
    "list_machines": attempt(lambda: sorted(client.list_machines())),
    "destroy": attempt(lambda: job.destroy() or "done"),
}
job_id = job._url.rstrip("/").rsplit("/", 1)[-1]  # spinnman and pyspalloc both keep _url
fresh = SpallocClient(url, bearer_token=token)  # a new session
result["final_state_seen_by_new_client"] = fresh.get_job(job_id).get_state().name
fresh.close()
client.close()
print(json.dumps({"result": result, "types": {}}), flush=True)
