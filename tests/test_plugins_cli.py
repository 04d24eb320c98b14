"""``smtpd-sim plugins``: what backends and roles this installation knows, and whence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.cli import app
from model.plugins import ROLE_ENTRY_POINT_GROUP, plugin_roles
from model.tables.registry import ENTRY_POINT_GROUP, backends

EXAMPLE = Path(__file__).parent.parent / "extras" / "smtpd-sim-table-example"
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


def test_installed_plugins_show_as_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site-packages"
    d = site / "smtpd_sim_table_example-0.1.0.dist-info"
    d.mkdir(parents=True)
    (d / "METADATA").write_text("Metadata-Version: 2.1\nName: smtpd-sim-table-example\nVersion: 0.1.0\n")
    (d / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nhttp = smtpd_sim_table_example:HttpBackend\n"
        f"[{ROLE_ENTRY_POINT_GROUP}]\nspamd = smtpd_sim_table_example.roles:SpamdRole\n")
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    monkeypatch.syspath_prepend(str(site))
    try:
        out = json.loads(runner.invoke(app, ["plugins", "--json"]).output)
        assert {"name": "http", "origin": "plugin"}.items() <= {x["name"]: x for x in out["tables"]}["http"].items()
        assert any(x["name"] == "spamd" and x["origin"].startswith("plugin") for x in out["roles"])
        text = runner.invoke(app, ["plugins"], env={"COLUMNS": "200"}).output
        assert "[tables.<name>]" in text and "spamd (plugin" in text
    finally:
        monkeypatch.undo()
        backends(refresh=True)
        plugin_roles(refresh=True)
