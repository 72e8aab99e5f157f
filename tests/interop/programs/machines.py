"""Log in, look at the service and its machines."""

import json
import sys

from pyspalloc import SpallocClient, SpallocState  # IMPORTS

url, user, password = sys.argv[1:4]

client = SpallocClient(url, user, password)
result = {"version": str(client.version), "states": {s.name: int(s) for s in SpallocState}}
machines = client.list_machines()
result["machine_names"] = sorted(machines)
result["machines"] = {
    name: {
        "name": machine.name,
        "tags": sorted(machine.tags),
        "width": machine.width,
        "height": machine.height,
        "area": list(machine.area),
        "dead_boards": sorted(machine.dead_boards, key=json.dumps),
        "dead_links": len(machine.dead_links),
    }
    for name, machine in machines.items()
}
types = {
    "client": type(client).__name__,
    "version": type(client.version).__name__,
    "machine": type(next(iter(machines.values()))).__name__,
}
client.close()
print(json.dumps({"result": result, "types": types}), flush=True)
