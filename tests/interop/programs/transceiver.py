"""A transceiver through the proxy: machine discovery, memory, credentials for a database."""

# ruff: noqa: F401
import json
import os
import re
import sys

from pyspalloc import SpallocClient, SpallocState  # IMPORTS

url, user, password = sys.argv[1:4]

client = SpallocClient(url, user, password)
job = client.create_job(1)
job.wait_until_ready()
result = {"state": job.get_state().name}
txrx = job.create_transceiver()
machine = txrx.get_machine_details()
result["machine"] = {"n_chips": machine.n_chips, "width": machine.width, "height": machine.height}
data = os.urandom(100_000)
written = txrx.write_memory(0, 0, 0x60000000, data)
result["write_returns"] = list(written) if isinstance(written, tuple) else written
result["read_back_same"] = bytes(txrx.read_memory(0, 0, 0x60000000, len(data))) == data
txrx.write_memory(3, 5, 0x60001000, b"chip 3,5 says hi")
result["other_chip"] = bytes(txrx.read_memory(3, 5, 0x60001000, 16)).decode()
types = {"transceiver": type(txrx).__name__, "machine": type(machine).__name__}
txrx.close()

credentials = job.get_session_credentials_for_db()
result["credential_keys"] = sorted(
    [kind, "<csrf header>" if kind == "HEADER" and "csrf" in name.lower() else name]
    for kind, name in credentials
)
service_uri = credentials["SPALLOC", "service uri"]
job_uri = credentials["SPALLOC", "job uri"]
result["service_uri"] = service_uri.rstrip("/") == url.rstrip("/")
result["job_uri"] = re.sub(r"/jobs/+\d+/?$", "/jobs/N/", job_uri).replace(url.rstrip("/"), "URL")
cookies = {name: v for (kind, name), v in credentials.items() if kind == "COOKIE"}
headers = {name: v for (kind, name), v in credentials.items() if kind == "HEADER"}
reopened = SpallocClient.open_job_from_database(service_uri, job_uri, cookies, headers)
result["reopened_state"] = reopened.get_state().name
result["reopened_connections_same"] = reopened.get_connections() == job.get_connections()

job.destroy()
result["final_state"] = job.get_state().name
client.close()
print(json.dumps({"result": result, "types": types}), flush=True)
