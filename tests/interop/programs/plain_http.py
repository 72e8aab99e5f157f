"""Log in, list machines and run a job on a service given by an ``http://`` URL."""

# ruff: noqa: F401
import json
import sys

from pyspalloc import SpallocClient, SpallocState  # IMPORTS

url, user, password = sys.argv[1:4]


def attempt(action):
    try:
        return {"value": action()}
    except Exception as error:
        return {"error": type(error).__name__}


clients = []
result = {"login": attempt(lambda: clients.append(SpallocClient(url, user, password)) or "ok")}
if clients:
    client = clients[0]
    result["list_machines"] = attempt(lambda: sorted(client.list_machines()))

    def create_and_destroy():
        job = client.create_job(1)
        job.destroy()
        return job.get_state().name

    result["create_job"] = attempt(create_and_destroy)
    client.close()
print(json.dumps({"result": result, "types": {}}), flush=True)
