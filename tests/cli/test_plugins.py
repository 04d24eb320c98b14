"""``smtpd-sim plugins``: what backends and roles this installation knows, and whence."""

from __future__ import annotations

import json
from collections.abc import Callable

from typer.testing import CliRunner

from smtpd_sim.cli import app
from smtpd_sim.spec.backends import ENTRY_POINT_GROUP
from smtpd_sim.spec.plugins import ROLE_ENTRY_POINT_GROUP

runner = CliRunner()


def test_builtins_are_listed_with_their_sources() -> None:
    r = runner.invoke(app, ["plugins", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    t = {x["name"]: x for x in out["tables"]}
    assert t["sqlite"]["origin"] == "built in" and t["sqlite"]["external"]
    assert "tables-6.8.toml" in t["redis"]["source"]  # measured on the real daemon
    assert t["ldap"]["lookup_s"] is None  # not measured: the user must set it
    assert [x["name"] for x in out["roles"]][:3] == ["parent", "smtp", "mta"]


def test_installed_plugins_show_as_plugins(fake_install: Callable[[str, str], None]) -> None:
    fake_install("smtpd-sim-table-example",
                 f"[{ENTRY_POINT_GROUP}]\nhttp = smtpd_sim_table_example:HttpBackend\n"
                 f"[{ROLE_ENTRY_POINT_GROUP}]\nspamd = smtpd_sim_table_example.roles:SpamdRole\n")
    out = json.loads(runner.invoke(app, ["plugins", "--json"]).output)
    assert {"name": "http", "origin": "plugin"}.items() <= {x["name"]: x for x in out["tables"]}["http"].items()
    assert any(x["name"] == "spamd" and x["origin"].startswith("plugin") for x in out["roles"])
    text = runner.invoke(app, ["plugins"], env={"COLUMNS": "200"}).output
    assert "[tables.<name>]" in text and "spamd (plugin" in text
