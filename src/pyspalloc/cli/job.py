"""``pyspalloc job [ID]``: show or control one job."""

from __future__ import annotations

import json
from collections.abc import Mapping

import click

from pyspalloc.cli.errors import CLIError, client_errors
from pyspalloc.cli.lookup import describe_job, only_live_job
from pyspalloc.cli.options import connect, json_option, service_options
from pyspalloc.cli.output import console, print_fields, print_json, print_table
from pyspalloc.cli.views import age, connection_rows, job_json, power_text
from pyspalloc.cli.waiting import state_progress, wait_for_ready
from pyspalloc.client import JobDescription


def _describe_request(request: Mapping[str, object] | None) -> str | None:
    if not request:
        return None
    shown = {k: v for k, v in request.items() if v is not None and k != "owner"}
    return json.dumps(shown, sort_keys=True)


def _print(view: JobDescription) -> None:
    fields: dict[str, object] = {
        "Job ID": view.id,
        "Owner": view.owner,
        "State": view.state,
        "Start time": f"{view.start_time} ({age(view.start_time)} ago)",
        "Keepalive": f"{view.keepalive_time} from {view.keepalive_host}"
        if view.keepalive_time
        else None,
        "Request": _describe_request(view.request),
        "Machine": view.machine,
        "Hostname": view.root_host,
        "Size (triads)": None if view.width is None else f"{view.width} x {view.height}",
        "Boards": view.num_boards or None,
        "Power": power_text(view),
    }
    if view.finish_time:
        fields["Finish time"] = view.finish_time
    if view.reason:
        fields["Reason"] = view.reason
    print_fields(fields)
    if view.connections:
        print_table(
            None,
            ["Chip (x, y)", "Hostname", "Board (x, y, z)"],
            connection_rows(view),
        )


@click.command()
@click.argument("job_id", required=False, type=int)
@click.option(
    "--destroy",
    "destroy",
    is_flag=False,
    flag_value="destroyed from the command line",
    default=None,
    metavar="[REASON]",
    help="Destroy the job, optionally saying why.",
)
@click.option("--power", type=click.Choice(["on", "off"]), default=None, help="Power the boards.")
@click.option("--keepalive", is_flag=True, help="Send one keepalive.")
@click.option("--timeout", type=float, default=None, help="Longest wait after --power (s).")
@service_options
@json_option
def job(
    job_id: int | None,
    destroy: str | None,
    power: str | None,
    keepalive: bool,
    timeout: float | None,
    url: str | None,
    username: str | None,
    password: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Show job JOB_ID (default: your only live job), or destroy, power or keep it alive."""
    if sum((destroy is not None, power is not None, keepalive)) > 1:
        raise click.UsageError("give at most one of --destroy, --power and --keepalive")
    if job_id is None and destroy is not None and destroy.strip().isdigit():
        raise click.UsageError(
            f"did you mean job {destroy.strip()}? write: pyspalloc job ID --destroy [REASON]"
        )
    client, settings = connect(url, username, password, token)
    with client, client_errors(settings.url):
        target = client.get_job(job_id) if job_id is not None else only_live_job(client)
        view = describe_job(target, allocation=False)
        if destroy is not None:
            target.destroy(destroy)
            view = describe_job(target, allocation=False)
            if not as_json:
                console.print(f"Job {view.id}: {view.state} ({view.reason or destroy})")
        elif power is not None:
            if view.state not in ("READY", "POWER"):
                raise CLIError(
                    f"job {view.id} is {view.state}; only a live allocated job can be powered"
                )
            target.set_power(power == "on")
            with state_progress(view.id, enabled=not as_json) as on_state:
                view = wait_for_ready(target, on_state, timeout)
        elif keepalive:
            if view.state == "DESTROYED":
                raise CLIError(f"job {view.id} is DESTROYED")
            target.send_keepalive()
            if not as_json:
                console.print(f"Job {view.id}: keepalive sent")
        view = describe_job(target, power=True)
    if as_json:
        print_json(job_json(view))
    elif destroy is None and not keepalive:
        _print(view)
