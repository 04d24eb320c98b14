"""``smtpd-sim explore``: one HTML file from the runs, bad input in one line (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from smtpd_sim.cli import app

runner = CliRunner()


def test_writes_one_page_for_the_eras_given(tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    r = runner.invoke(app, ["explore", "--eras", "pony-6.8", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"wrote {out}" in r.stdout.replace("\n", "") and "pony-6.8 31" in r.stdout
    html = out.read_text()
    data = json.loads(html.split('id="explore-data">', 1)[1].split("</script>", 1)[0])
    assert [e["era"] for e in data["eras"]] == ["pony-6.8"] and data["seed"] == 1


def test_scenario_gives_seed_and_parts(tmp_path: Path) -> None:
    sc = tmp_path / "s.toml"
    sc.write_text('era = "pony-6.8"\nseed = 7\n[workload]\nduration_s = 2\n')
    out = tmp_path / "p.html"
    r = runner.invoke(app, ["explore", "--eras", "pony", "--scenario", str(sc), "--out", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text().split('id="explore-data">', 1)[1].split("</script>", 1)[0])
    assert data["seed"] == 7 and data["compare"]["seed"] == 7


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    for args in (["--eras", "nosuch"], ["--eras", "pony,pony"], ["--eras", ","], ["--out", str(tmp_path)],
                 ["--scenario", "nosuch"], ["--seed", "-1"]):
        r = runner.invoke(app, ["explore", *args])
        assert r.exit_code == 2, (args, r.output)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output, (args, r.stderr)
