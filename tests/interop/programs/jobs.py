"""Every way of asking for boards, then watching, finding and ending the jobs."""

import json
import re
import sys
import threading

from pyspalloc import SpallocClient, SpallocState  # IMPORTS

url, user, password, params = sys.argv[1:5]
params = json.loads(params)  # {"ip": address of one specific board, "machine": name}


def job_id(job):
    return re.search(r"/jobs/+(\d+)", repr(job)).group(1)


def attempt(action):
    """What an action gave, or which exception it raised."""
    try:
        return {"value": action()}
    except Exception as error:
        return {"error": type(error).__name__, "is_value_error": isinstance(error, ValueError)}


def described(job):
    connections = job.get_connections()
    return {
        "state": job.get_state().name,
        "boards": len(connections),
        "board_chips": sorted(list(xy) for xy in connections),
        "root_host_is_0_0": job.get_root_host() == connections.get((0, 0)),
        "root_is_job_board": job.get_root_host() in connections.values(),
        "where_0_0": list(job.where_is_machine(0, 0)),
        "where_outside": job.where_is_machine(200, 200),
    }


client = SpallocClient(url, user, password)
result = {}
types = {}

by_triad = client.create_job_board(triad=(1, 0, 2))
by_physical = client.create_job_board(physical=(0, 0, 7), machine_name=params["machine"])
by_ip = client.create_job_board(ip_address=params["ip"])
rect_at = client.create_job_rect_at_board(1, 1, triad=(2, 1, 0))
one = client.create_job(1)
rect = client.create_job_rect(1, 1)
jobs = {
    "create_job_board(triad)": by_triad,
    "create_job_board(physical)": by_physical,
    "create_job_board(ip_address)": by_ip,
    "create_job_rect_at_board": rect_at,
    "create_job(1)": one,
    "create_job_rect(1, 1)": rect,
}
types["job"] = type(one).__name__
result["first_state"] = {
    name: job.get_state().name in ("QUEUED", "POWER", "READY") for name, job in jobs.items()
}
for job in jobs.values():
    job.wait_until_ready()
result["jobs"] = {name: described(job) for name, job in jobs.items()}
result["specific_roots"] = {
    "triad": by_triad.get_root_host(),
    "physical": by_physical.get_root_host(),
    "ip": by_ip.get_root_host(),
    "rect_at_board": rect_at.get_root_host(),
}
types["state"] = type(one.get_state()).__name__
types["connections"] = type(one.get_connections()).__name__

ids = {name: job_id(job) for name, job in jobs.items()}
before = threading.active_count()
listed = list(client.list_jobs())
result["threads_started_by_list_jobs"] = threading.active_count() - before
listed_ids = {job_id(job) for job in listed}
result["list_jobs_has_ours"] = {name: i in listed_ids for name, i in ids.items()}
types["listed_job"] = type(listed[0]).__name__

before = threading.active_count()
again = client.get_job(ids["create_job(1)"])
result["threads_started_by_get_job"] = threading.active_count() - before
result["get_job_state"] = again.get_state().name
result["get_job_connections_same"] = again.get_connections() == one.get_connections()
result["get_job_where_same"] = again.where_is_machine(0, 0) == one.where_is_machine(0, 0)

result["impossible_request"] = attempt(lambda: client.create_job_rect(5, 5))
result["bad_board"] = attempt(lambda: client.create_job_board(triad=(9, 9, 9)))

for name, job in jobs.items():
    job.destroy("done with " + name)
result["final_state"] = {name: job.get_state().name for name, job in jobs.items()}
gone = client.get_job(ids["create_job(1)"])
result["destroyed"] = {
    "get_job_state": gone.get_state().name,
    "connections": attempt(lambda: sorted(gone.get_connections())),
    "root_host": attempt(gone.get_root_host),
    "where_0_0": attempt(lambda: gone.where_is_machine(0, 0)),
    "wait_until_ready": attempt(gone.wait_until_ready),
    "wait_for_state_change": attempt(lambda: gone.wait_for_state_change(SpallocState.READY).name),
    "create_transceiver": attempt(lambda: type(gone.create_transceiver()).__name__),
}
listed_after = {job_id(job) for job in client.list_jobs()}
result["listed_after_destroy"] = {name: i in listed_after for name, i in ids.items()}
deleted = {job_id(job) for job in client.list_jobs(deleted=True)}
result["listed_with_deleted"] = {name: i in deleted for name, i in ids.items()}
client.close()
print(json.dumps({"result": result, "types": types}), flush=True)
