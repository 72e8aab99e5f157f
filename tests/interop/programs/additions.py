"""The spinnman 1!7.4.1 additions: a busy board gives up, destroy twice, repr, EIEIO."""

# ruff: noqa: F401
import json
import sys
import time

from pyspalloc import SpallocClient, SpallocState  # IMPORTS

url, user, password = sys.argv[1:4]


def request(client, **what):
    """Create a job: by the arguments of pyspalloc (and spinnman 7.3.0), or, as spinnman
    7.4.1 wants, by its configuration and a create_job() with no arguments."""
    if hasattr(client, "create_job_board"):
        return client.create_job_board(triad=what["triad"])
    from spinn_utilities.config_holder import set_config

    set_config("Machine", "spalloc_triad", ",".join(map(str, what["triad"])))
    return client.create_job()


def error_of(call):
    try:
        call()
    except Exception as error:
        mro = [cls.__name__ for cls in type(error).__mro__]
        return {"error": type(error).__name__, "is_spalloc": "SpallocException" in mro}
    return {"value": "no error"}


result = {}
client = SpallocClient(url, user, password)
blocker = request(client, triad=(1, 0, 2))
blocker.wait_until_ready()
root = blocker.get_connections()[(0, 0)]
text = repr(blocker)
result["repr"] = {"has_url": blocker._url in text if hasattr(blocker, "_url") else None,
                  "has_root": root in text}  # fmt: skip

wanted = request(client, triad=(1, 0, 2))
result["wanted_state"] = wanted.get_state().name
started = time.monotonic()
result["busy_board"] = error_of(wanted.wait_until_ready)
result["gave_up_within_10_to_40_s"] = 10 <= time.monotonic() - started <= 40
result["destroy_twice"] = [error_of(wanted.destroy), error_of(wanted.destroy)]
result["wanted_final"] = wanted.get_state().name
blocker.destroy()
result["final_state"] = blocker.get_state().name
client.close()
print(json.dumps({"result": result, "types": {"job": type(blocker).__name__}}), flush=True)
