"""The scoreboard: one table of every implementation's verdicts, with the frameworks that are not installed listed
as such, and usage errors before anything runs."""

from __future__ import annotations

import json

from reference import scoreboard
from reference.__main__ import main


def conform_rows(verdicts: dict) -> list[dict]:
    """conformance.json rows for {(tier, subject, dtype): (verdict, worst ratio)}."""
    return [dict(tier=tier, subject=subject, dtype=dtype, device="cpu", verdict=verdict, worst_ratio=ratio, cases=3,
                 reason="", implemented="forward only" if subject == "Linear" else "yes")
            for (tier, subject, dtype), (verdict, ratio) in verdicts.items()]


def run(name, rows, **extra):
    return dict(name=name, module=f"mod.{name}", framework=name.upper(), versions={name: "1.0"}, unavailable=None,
                exit_status=0, seconds=12.0, rows=rows, problem=None, examples=5, xfails=None, **extra)


def test_the_board_combines_every_implementation_per_op_and_dtype(tmp_path):
    ours = conform_rows({("op", "Conv2d", "float64"): ("pass", 0.01), ("op", "Linear", "float64"): ("pass", 0.2),
                         ("model", "tiny_cnn[train]", "float32"): ("pass", 0.5)})
    theirs = conform_rows({("op", "Conv2d", "float64"): ("xfail", 31.0), ("op", "Linear", "float64"): ("pass", 0.3),
                           ("model", "tiny_cnn[train]", "float32"): ("not implemented", None)})
    absent = dict(run("absent", []), unavailable="Absent is not installed; pip install reference[absent]",
                  exit_status=None)
    scoreboard.write_board(tmp_path, [run("ours", ours), run("theirs", theirs), absent])
    board = json.loads((tmp_path / "scoreboard.json").read_text())
    cells = {(row["tier"], row["subject"], row["dtype"]): row["cells"] for row in board["rows"]}
    assert cells[("op", "Conv2d", "float64")]["theirs"]["verdict"] == "xfail"
    assert [entry["name"] for entry in board["implementations"]] == ["ours", "theirs", "absent"]
    markdown = (tmp_path / "scoreboard.md").read_text()
    assert "| op | Conv2d | float64 | pass 0.01 | xfail 31 | - |" in markdown
    assert "| op | Linear | float64 | pass 0.2 (fwd) | pass 0.3 (fwd) | - |" in markdown
    assert "| model | tiny_cnn[train] | float32 | pass 0.5 | n/i | - |" in markdown
    assert "not run: Absent is not installed; pip install reference[absent]" in markdown
    assert (tmp_path / "scoreboard.png").read_bytes()[:4] == b"\x89PNG"


def test_an_adapter_whose_framework_is_missing_is_listed_not_run(monkeypatch, tmp_path, capsys):
    module = tmp_path / "absent_adapter.py"
    module.write_text('FRAMEWORK = "Absent"\nUNAVAILABLE = "Absent is not installed"\n'
                      "def versions():\n    return {}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(scoreboard.IMPLEMENTATIONS, "absent", "absent_adapter")
    assert scoreboard.run_scoreboard(["absent"], report_dir=str(tmp_path / "board")) == 0
    assert "absent: not run: Absent is not installed" in capsys.readouterr().out
    assert "not run: Absent is not installed" in (tmp_path / "board" / "scoreboard.md").read_text()


def test_usage_errors_exit_2_before_anything_runs(tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    assert main(["scoreboard", "--report-dir", str(tmp_path / "a_file")]) == 2
    assert "is a file, expected a folder" in capsys.readouterr().err
    assert main(["scoreboard", "-n", "-3", "--report-dir", str(tmp_path / "board")]) == 2
    assert "-n -3: expected" in capsys.readouterr().err
