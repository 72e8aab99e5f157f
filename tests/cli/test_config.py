"""The service's configuration file: every table loads, every bad value and unknown key
is refused by name, the command line overrides the file, ``pyspalloc config show``, and a
``pyspalloc serve --config`` process really uses a setting from the file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result

from pyspalloc.cli.main import main
from pyspalloc.server.config import ServiceConfig
from pyspalloc.server.config_file import (
    NOT_IN_FILE,
    SETTINGS,
    TABLES,
    ConfigFileError,
    read_config_file,
)
from pyspalloc.server.config_values import shown

#: a valid value, different from the default, for each key: (table, key) -> TOML value
SAMPLES: dict[tuple[str, str], Any] = {
    ("server", "host"): "127.0.0.2",
    ("server", "port"): 9123,
    ("server", "data_dir"): "/srv/spalloc",
    ("server", "allowed_hosts"): ["spalloc.example.org"],
    ("server", "allowed_origins"): ["https://portal.example.org"],
    ("server", "trusted_proxies"): ["10.0.0.2"],
    ("server", "session_timeout"): 600,
    ("server", "emergency_code"): "big-red-button",
    ("server", "create_admin"): False,
    ("server", "debug"): True,
    ("database", "url"): "postgresql+psycopg://spalloc@db/spalloc",
    ("tls", "cert"): "/etc/spalloc/cert.pem",
    ("tls", "key"): "/etc/spalloc/key.pem",
    ("tls", "self_signed"): True,
    ("machines", "specs"): ["spin24", "virtual:spin5@127.1.9.0"],
    ("machines", "virtual_address_base"): "127.1.7.0",
    ("machines", "virtual_memory_mib"): 64,
    ("hardware", "controller"): "bmp",
    ("hardware", "boot_image"): "/etc/spalloc/scamp.boot",
    ("hardware", "off_wait_time"): 12.5,
    ("hardware", "power_workers"): 2,
    ("hardware", "operation_drain_timeout"): 9,
    ("jobs", "keepalive_min"): 5,
    ("jobs", "keepalive_max"): 40.5,
    ("jobs", "expiry_period"): 7,
    ("jobs", "wait_timeout"): 11,
    ("jobs", "max_jobs_per_user"): 3,
    ("allocator", "period"): 0.25,
    ("allocator", "importance_span"): 500,
    ("allocator", "priority_size"): 2,
    ("allocator", "priority_dimensions"): 2.5,
    ("allocator", "priority_specific_board"): 70,
    ("auth", "max_login_failures"): 9,
    ("auth", "account_lock_duration"): 120,
    ("auth", "max_ip_failures"): 50,
    ("auth", "ip_failure_window"): 600,
    ("auth", "hash_slots"): 2,
    ("auth", "hash_queue"): 4,
    ("auth", "hash_wait"): 3,
    ("auth", "verified_ttl"): 0,
    ("proxy", "enable"): False,
    ("proxy", "local_host"): "127.0.0.1",
    ("proxy", "max_channels"): 16,
    ("proxy", "max_websockets_per_job"): 2,
    ("proxy", "max_websockets_per_user"): 5,
    ("proxy", "max_channels_per_user"): 100,
    ("proxy", "max_channels_total"): 900,
    ("proxy", "recheck_period"): 3,
    ("reports", "action_threshold"): 4,
    ("reports", "max_issue_length"): 300,
    ("metrics", "allow"): ["10.0.0.0/8", "::1"],
}


def toml(values: dict[tuple[str, str], Any]) -> str:
    """A TOML document of ``(table, key) -> value``."""
    tables: dict[str, list[str]] = {}
    for (table, key), value in values.items():
        tables.setdefault(table, []).append(f"{key} = {shown(value)}")
    return "".join(f"[{t}]\n" + "\n".join(lines) + "\n\n" for t, lines in tables.items())


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigFileError) as error:
        read_config_file(write(tmp_path, text))
    return str(error.value)


def test_every_service_setting_has_a_key() -> None:
    """A field added to ServiceConfig without a line in SETTINGS fails here."""
    keyed = {s.field.partition(".")[0] for s in SETTINGS}
    fields = {f.name for f in dataclasses.fields(ServiceConfig)}
    assert fields - keyed - set(NOT_IN_FILE) == set()
    assert keyed - fields == set()
    assert len({(s.table, s.key) for s in SETTINGS}) == len(SETTINGS)


def test_every_table_and_key_loads(tmp_path: Path) -> None:
    values = read_config_file(write(tmp_path, toml(SAMPLES)))
    assert {table for table, _ in SAMPLES} <= set(TABLES)
    for setting in SETTINGS:
        sample = SAMPLES.get((setting.table, setting.key))
        if sample is None:  # a key added since: its checker is tested below
            continue
        value = values[setting.field]
        default = getattr(ServiceConfig(), setting.field)
        assert value != default, setting.name
        plain = list(value) if isinstance(value, tuple) else value
        expected = Path(sample) if isinstance(value, Path) else sample
        assert plain == expected, setting.name
    config = ServiceConfig()
    for field, value in values.items():
        setattr(config, field, value)
    assert (config.keepalive_max, config.allocator_period) == (40.5, 0.25)
    assert config.tls_cert == Path("/etc/spalloc/cert.pem")
    assert config.metrics_allow == ("10.0.0.0/8", "::1")
    assert config.trusted_proxies == ("10.0.0.2",)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"{s.table}.{s.key}")
def test_every_key_refuses_a_value_of_the_wrong_kind(tmp_path: Path, setting: Any) -> None:
    message = refusal(tmp_path, f"[{setting.table}]\n{setting.key} = {{ x = 1 }}\n")
    assert message.startswith(f"config.toml: [{setting.table}] {setting.key}: must be ")
    assert message.endswith(", not {...}")


SECONDS = "must be a number of seconds (0 or more)"
WHOLE = "must be a whole number, 1 or more"


@pytest.mark.parametrize(
    ("table", "key", "value", "must"),
    [
        ("jobs", "keepalive_max", '"abc"', SECONDS),
        ("jobs", "keepalive_min", "-1", SECONDS),
        ("jobs", "max_jobs_per_user", "0", WHOLE + ', or "unlimited"'),
        ("jobs", "max_jobs_per_user", "2.5", WHOLE + ', or "unlimited"'),
        ("server", "port", "70000", "must be a port number (0 to 65535)"),
        ("server", "port", '"8080"', "must be a port number (0 to 65535)"),
        ("server", "debug", '"yes"', "must be true or false"),
        ("server", "host", '""', "must be a non-empty string"),
        ("server", "allowed_hosts", '"a.example"', "must be a list of non-empty strings"),
        ("hardware", "controller", '"magic"', 'must be one of "auto", "bmp", "instant"'),
        ("hardware", "power_workers", "true", WHOLE),
        ("machines", "virtual_address_base", '"127.1"',
         'must be an IPv4 address such as "127.1.0.0"'),
        ("metrics", "allow", '["10.0.0.0/33"]',
         'must be a list of addresses or networks such as "10.0.0.0/8"'),
        ("allocator", "priority_size", '"big"', "must be a number"),
    ],
)  # fmt: skip
def test_bad_values_are_named(tmp_path: Path, table: str, key: str, value: str, must: str) -> None:
    message = refusal(tmp_path, f"[{table}]\n{key} = {value}\n")
    assert message == f"config.toml: [{table}] {key}: {must}, not {value}"


def test_unknown_keys_and_tables_are_refused_by_name(tmp_path: Path) -> None:
    assert refusal(tmp_path, "[jobs]\nkeepalive_maxx = 3\n") == (
        "config.toml: [jobs] keepalive_maxx: unknown key (known: keepalive_min, "
        "keepalive_max, expiry_period, wait_timeout, max_jobs_per_user)"
    )
    assert refusal(tmp_path, "[jobz]\nkeepalive_max = 3\n").startswith(
        "config.toml: [jobz]: unknown table (known: [server], [database], "
    )
    assert refusal(tmp_path, "port = 80\n").startswith(
        "config.toml: port: a key outside any table (tables: [server], [database], "
    )
    assert refusal(tmp_path, "[jobs\n").startswith("config.toml: not valid TOML: ")


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def show_json(*args: str, env: dict[str, str] | None = None) -> dict[tuple[str, str], Any]:
    result = run("config", "show", "--json", *args, env=env)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["settings"]
    return {(r["table"], r["key"]): r for r in rows}


def test_command_line_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9000\nhost = \"127.0.0.3\"\n"
                 "[jobs]\nkeepalive_max = 600\n[proxy]\nmax_channels = 10\n"
                 "max_websockets_per_job = 3\n")  # fmt: skip
    rows = show_json("--config", str(path), "--port", "9100", "--proxy-limit", "channels=20",
                     env={"PYSPALLOC_EMERGENCY_CODE": "stop-it"})  # fmt: skip
    expect = {
        ("server", "port"): (9100, 8080, "command line"),
        ("server", "host"): ("127.0.0.3", "127.0.0.1", "file"),
        ("jobs", "keepalive_max"): (600.0, 300.0, "file"),
        ("jobs", "keepalive_min"): (30.0, 30.0, "default"),
        ("proxy", "max_channels"): (20, 64, "command line"),
        ("proxy", "max_websockets_per_job"): (3, 8, "file"),
        ("server", "emergency_code"): ("(hidden)", None, "environment"),
        ("machines", "specs"): (["virtual:spin24"], ["virtual:spin24"], "default"),
    }
    for name, (value, default, source) in expect.items():
        row = rows[name]
        assert (row["value"], row["default"], row["source"]) == (value, default, source), name
    assert rows[("jobs", "keepalive_max")]["meaning"].startswith("Longest keepalive")
    assert set(rows) == {(s.table, s.key) for s in SETTINGS}


def test_config_show_gives_each_v1_key_its_own_source(tmp_path: Path) -> None:
    path = write(tmp_path, '[v1]\nport = 22244\nuser = "oldtools"\n')
    rows = show_json("--config", str(path))
    assert rows[("v1", "port")]["value"] == 22244
    assert rows[("v1", "port")]["source"] == rows[("v1", "user")]["source"] == "file"
    assert rows[("v1", "group")]["source"] == rows[("v1", "allow")]["source"] == "default"


def test_config_show_hides_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "postgresql+psycopg://spalloc:s3cret@db/spalloc"\n'
                 '[server]\nemergency_code = "big-red-button"\n')  # fmt: skip
    for args in (["--json"], []):
        result = run("config", "show", "--config", str(path), *args)
        assert result.exit_code == 0, result.output
        assert "s3cret" not in result.output and "big-red-button" not in result.output
        assert "postgresql+psycopg://spalloc:***@db/spalloc" in result.output
        assert "(hidden)" in result.output


def test_config_show_prints_toml_with_defaults_and_sources(tmp_path: Path) -> None:
    path = write(tmp_path, '[jobs]\nkeepalive_max = 600\n[hardware]\ncontroller = "instant"\n')
    result = run("config", "show", "--config", str(path), "--port", "9100")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "[server]"
    assert "port = 9100  # command line; default 8080" in lines
    assert "keepalive_max = 600.0  # file; default 300.0" in lines
    assert "keepalive_min = 30.0  # default" in lines
    assert 'controller = "instant"  # file; default "auto"' in lines
    assert "# url = (unset)  # default" in lines
    # the text is itself a configuration file giving the same settings
    again = write(tmp_path, result.output, "again.toml")
    assert read_config_file(again)["keepalive_max"] == 600.0
    assert read_config_file(again)["port"] == 9100


def test_serve_refuses_a_bad_file_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[jobs]\nkeepalive_max = "abc"\n')
    result = run("serve", "--config", str(path))
    assert result.exit_code == 1
    assert (
        'config.toml: [jobs] keepalive_max: must be a number of seconds (0 or more), not "abc"'
        in result.output
    )
    path = write(tmp_path, '[tls]\ncert = "/x/cert.pem"\n')
    result = run("config", "show", "--config", str(path))
    assert result.exit_code == 1 and "[tls] cert and key" in result.output
    path = write(tmp_path, "[jobs]\nkeepalive_min = 50\nkeepalive_max = 40\n")
    result = run("serve", "--config", str(path))
    assert "keepalive_min must not exceed keepalive_max" in result.output  # fmt: skip


def test_serve_uses_the_file(tmp_path: Path) -> None:
    """A real ``pyspalloc serve --config`` process: the file's keepalive limits are
    enforced over REST, and --port on the command line wins over the file's port."""
    from tests.reliability.serve_process import ServeProcess, make_users
    from tests.support.http_client import Http

    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    make_users(database)
    path = write(tmp_path, "[server]\nport = 1\n[jobs]\nkeepalive_min = 5\n"
                 "keepalive_max = 40\n[metrics]\nallow = []\n")  # fmt: skip
    process = ServeProcess(tmp_path / "data", database)
    process.start("--config", str(path))
    try:
        alice = Http(process.url)
        alice.login("alice")
        refused = alice.post("jobs", json={"num-boards": 1, "keepalive-interval": "PT60S",
                                           "tags": ["default"]})  # fmt: skip
        assert refused.status_code == 400
        assert "keepalive-interval must be 5 to 40 seconds" in refused.text
        created = alice.post("jobs", json={"num-boards": 1, "keepalive-interval": "PT30S",
                                           "tags": ["default"]})  # fmt: skip
        assert created.status_code == 201
        # [metrics] allow = []: even loopback must log in as an admin
        assert requests.get(process.url + "metrics", timeout=30).status_code == 401
    finally:
        process.stop()


def test_operator_guide_documents_every_key() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "operator.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        heading = f"\n### [{setting.table}]\n"
        assert heading in guide, setting.table
        section = guide.split(heading, 1)[1].split("\n#", 1)[0]
        assert f"| `{setting.key}` |" in section, setting.name
