"""An EIEIO listener hears a packet sent by a core of the job's board."""

# ruff: noqa: F401
import json
import sys

from pyspalloc import SpallocClient, SpallocState  # IMPORTS

url, user, password = sys.argv[1:4]

client = SpallocClient(url, user, password)
job = client.create_job(1)
job.wait_until_ready()
listener = job.open_eieio_listener_connection()
listener.update_tag(0, 0, 1)
result = {"local_port_set": listener.local_port > 0, "local_ip": listener.local_ip_address}
print(json.dumps({"checkpoint": {"root_host": job.get_root_host(), "tag": 1}}), flush=True)
sys.stdin.readline()  # the test has made the board send
message = listener.receive_eieio_message(timeout=30)
if hasattr(message, "is_next_element"):  # spinnman's EIEIO message classes
    result["message_api"] = "is_next_element/next_element"
    keys = []
    while message.is_next_element:
        keys.append(message.next_element.key)
else:  # pyspalloc's: a dataclass holding its keys
    result["message_api"] = "keys"
    keys = list(message.keys)
result["keys"] = keys
types = {"listener": type(listener).__name__, "message": type(message).__name__}
listener.close()
job.destroy()
result["final_state"] = job.get_state().name
client.close()
print(json.dumps({"result": result, "types": types}), flush=True)
