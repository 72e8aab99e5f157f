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
bound = job.open_eieio_connection(0, 0)
bound.update_tag(2)
result = {"local_port_set": listener.local_port > 0, "local_ip": listener.local_ip_address}
checkpoint = {"root_host": job.get_root_host(), "tags": {"listener": 1, "bound": 2}}
print(json.dumps({"checkpoint": checkpoint}), flush=True)
sys.stdin.readline()  # the test has made the board send through both tags


def keys_of(message):
    if hasattr(message, "is_next_element"):  # spinnman's EIEIO message classes
        result["message_api"] = "is_next_element/next_element"
        keys = []
        while message.is_next_element:
            keys.append(message.next_element.key)
        return keys
    result["message_api"] = "keys"  # pyspalloc's: a dataclass holding its keys
    return list(message.keys)


message = listener.receive_eieio_message(timeout=30)
result["keys"] = keys_of(message)
result["bound_keys"] = keys_of(bound.receive_eieio_message(timeout=30))
types = {
    "listener": type(listener).__name__,
    "bound": type(bound).__name__,
    "message": type(message).__name__,
}
listener.close()
bound.close()
job.destroy()
result["final_state"] = job.get_state().name
client.close()
print(json.dumps({"result": result, "types": types}), flush=True)
