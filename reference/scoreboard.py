"""`python -m reference scoreboard`: the conformance engine over our NumPy layers and every framework adapter, one
combined table.

Each implementation runs `python -m reference conform` in a process of its own (a framework that crashes its
interpreter costs its own column only), with the adapter's shipped xfails file (explained differences) and its
MAX_EXAMPLES. The board writes `scoreboard.json` (rows, framework versions, how many examples each ran, wall
times), `scoreboard.md` (implementation x op or model x dtype: verdict and worst error / tolerance) and
`scoreboard.png` (the same as a heatmap), replacing the report folder's board files as a whole. An adapter whose
framework is not installed is listed as such. Exit status: 0 when every implementation that ran conforms (known,
explained differences included), 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

from .adapters import ADAPTERS
from .data import atomic_write_bytes

IMPLEMENTATIONS = {"numpy_nn": "reference.numpy_nn", **ADAPTERS}
XFAILS = Path(__file__).parent / "adapters" / "xfails"
CELL = {"pass": "pass", "FAIL": "**FAIL**", "refused": "**refused**", "crashed": "**crashed**", "xfail": "xfail",
        "XPASS": "xpass", "not implemented": "n/i"}


def _usage(message: str) -> int:
    print(f"python -m reference scoreboard: error: {message}", file=sys.stderr)
    return 2


def describe(name: str) -> dict:
    """What the board says of an implementation before running it: module, framework, versions, availability."""
    module_name = IMPLEMENTATIONS[name]
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # an adapter that cannot even be imported is reported, not fatal to the board
        return dict(name=name, module=module_name, framework=name, versions={},
                    unavailable=f"cannot import {module_name}: {type(error).__name__}: {error}")
    versions = module.versions() if hasattr(module, "versions") else _own_versions()
    return dict(name=name, module=module_name, framework=getattr(module, "FRAMEWORK", "NumPy (reference.numpy_nn)"),
                versions=versions, unavailable=getattr(module, "UNAVAILABLE", None),
                max_examples=getattr(module, "MAX_EXAMPLES", None))


def _own_versions() -> dict:
    import numpy
    import scipy

    return {"numpy": numpy.__version__, "scipy": scipy.__version__}


def run_one(entry: dict, folder: Path, jobs: str | None, max_examples: int | None, timeout: float | None,
            slow: bool = False) -> dict:
    """Run conform on one implementation into `folder` (without the heavy checks unless `slow`); its rows and how
    the run went."""
    xfails = XFAILS / f"{entry['name']}.txt"
    examples = min(filter(None, [max_examples, entry.get("max_examples")]), default=max_examples)
    command = [sys.executable, "-m", "reference", "conform", entry["module"], "--report-dir", str(folder)]
    command += ["-n", jobs] if jobs else []
    command += ["--max-examples", str(examples)] if examples else []
    command += ["--timeout", str(timeout)] if timeout else []
    command += ["--xfails", str(xfails)] if xfails.is_file() else []
    command += [] if slow else ["--skip-slow"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    report = folder / "conformance.json"
    rows = json.loads(report.read_text())["rows"] if report.is_file() and result.returncode in (0, 1) else []
    problem = None if result.returncode in (0, 1) else (result.stderr.strip().splitlines() or ["no output"])[-1]
    (folder / "conform.log").write_text(result.stdout + result.stderr)
    return dict(entry, exit_status=result.returncode, seconds=round(seconds, 1), rows=rows, problem=problem,
                examples=examples or 25, xfails=str(xfails) if xfails.is_file() else None)


def run_scoreboard(implementations=None, report_dir: str = "reports/scoreboard", jobs: str | None = None,
                   max_examples: int | None = None, timeout: float | None = None, slow: bool = False,
                   quiet: bool = False) -> int:
    """Run every implementation (default: all; the heavy model checks only with `slow`) and write the combined
    board; the exit status."""
    from .testing.conformance.cli import jobs_problem
    from .testing.conformance.report import writable_folder_problem

    names = list(implementations or IMPLEMENTATIONS)
    unknown = [name for name in names if name not in IMPLEMENTATIONS]
    problem = ((f"unknown implementations {unknown}; choose from {list(IMPLEMENTATIONS)}" if unknown else None)
               or jobs_problem(jobs) or (f"--max-examples {max_examples}: expected at least 1"
                                         if max_examples is not None and max_examples < 1 else None)
               or writable_folder_problem("--report-dir", report_dir))
    if problem:
        return _usage(problem)
    folder = Path(report_dir)
    runs = []
    for name in names:
        entry = describe(name)
        if entry["unavailable"]:
            runs.append(dict(entry, exit_status=None, seconds=0.0, rows=[], problem=None, examples=0, xfails=None))
            _say(quiet, f"{name}: not run: {entry['unavailable']}")
            continue
        _say(quiet, f"{name}: running python -m reference conform {entry['module']} ...")
        run = run_one(entry, folder / name, jobs, max_examples, timeout, slow)
        runs.append(run)
        _say(quiet, f"{name}: {_counts(run['rows'])} in {run['seconds']:.0f} s"
             + (f" (exit {run['exit_status']}: {run['problem']})" if run["problem"] else ""))
    write_board(folder, runs)
    _say(quiet, f"scoreboard: {folder / 'scoreboard.md'}")
    failed = [run for run in runs if run["exit_status"] not in (None, 0)]
    return 1 if failed else 0


def _say(quiet: bool, line: str) -> None:
    if not quiet:
        print(line, flush=True)


def _counts(rows) -> str:
    counts = {}
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return ", ".join(f"{count} {verdict}" for verdict, count in sorted(counts.items())) or "no checks"


def board_rows(runs) -> list[dict]:
    """One row per (tier, op or model, dtype) on the CPU: each implementation's verdict, ratio and cases."""
    cells: dict[tuple, dict] = {}
    for run in runs:
        for row in run["rows"]:
            if row["device"] != "cpu":
                continue
            key = (row["tier"], row["subject"], row["dtype"])
            cells.setdefault(key, {})[run["name"]] = dict(
                verdict=row["verdict"], ratio=row["worst_ratio"], cases=row["cases"], reason=row["reason"],
                implemented=row["implemented"])
    return [dict(tier=k[0], subject=k[1], dtype=k[2], cells=cells[k]) for k in sorted(cells, key=_order)]


def _order(key):
    tiers = ("op", "oracle", "model", "trajectory", "statistics")
    return (tiers.index(key[0]) if key[0] in tiers else 9, key[1], key[2])


def _cell(cell: dict | None) -> str:
    if cell is None:
        return "-"
    text = CELL.get(cell["verdict"], cell["verdict"])
    ratio = cell["ratio"]
    if cell["verdict"] in ("pass", "FAIL", "xfail", "XPASS") and ratio is not None:
        text += f" {float(ratio):.2g}"
    if cell["implemented"] == "forward only":
        text += " (fwd)"
    return text


def _markdown(runs, rows) -> str:
    names = [run["name"] for run in runs]
    lines = ["# Conformance scoreboard", "",
             "Each implementation judged by `python -m reference conform` against PyTorch (CPU). A cell is the verdict "
             "and the worst error / tolerance over all cases (<= 1 passes); xfail = a known difference, explained "
             "in the adapter's xfails file (xpass: the difference did not show in these draws); n/i = not "
             "implemented (the reason is in that implementation's report); (fwd) = forward only.", "",
             "| implementation | framework | versions | examples per check | wall time | verdicts |",
             "|---|---|---|---:|---:|---|"]
    for run in runs:
        versions = ", ".join(f"{k} {v}" for k, v in run["versions"].items())
        verdicts = f"not run: {run['unavailable']}" if run["unavailable"] else _counts(run["rows"])
        if run.get("problem"):
            verdicts += f" (exit {run['exit_status']}: {run['problem']})"
        lines.append(f"| {run['name']} | {run['framework']} | {versions} | {run['examples'] or '-'} | "
                     f"{run['seconds']:.0f} s | {verdicts} |")
    lines += ["", "| tier | op / model | dtype | " + " | ".join(names) + " |",
              "|---|---|---|" + "---|" * len(names)]
    lines += [f"| {r['tier']} | {r['subject']} | {r['dtype']} | "
              + " | ".join(_cell(r["cells"].get(name)) for name in names) + " |" for r in rows]
    return "\n".join(lines) + "\n\n![scoreboard](scoreboard.png)\n"


def write_board(folder: Path, runs) -> None:
    """scoreboard.json, scoreboard.md and scoreboard.png into `folder` (each written whole)."""
    from .testing.conformance.report import json_safe

    rows = board_rows(runs)
    summary = [{k: v for k, v in run.items() if k != "rows"} for run in runs]
    atomic_write_bytes(folder / "scoreboard.json", json.dumps(json_safe(dict(implementations=summary, rows=rows)),
                                                              indent=1, allow_nan=False, default=str).encode())
    atomic_write_bytes(folder / "scoreboard.md", _markdown(runs, rows).encode())
    if rows:
        _heatmap(runs, rows, folder / "scoreboard.png")


VERDICT_COLOURS = {"FAIL": "#d7301f", "refused": "#7b3294", "crashed": "#000000", "XPASS": "#d7301f",
                   "xfail": "#fdae61", "not implemented": "#dddddd"}


def _heatmap(runs, rows, path: Path) -> None:
    """Rows: op or model x dtype; columns: implementations; green shades by worst ratio where passing."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    names = [run["name"] for run in runs]
    fig, ax = plt.subplots(figsize=(2.5 + 1.3 * len(names), 1.0 + 0.16 * len(rows)))
    for i, row in enumerate(rows):
        for j, name in enumerate(names):
            cell = row["cells"].get(name)
            if cell is None:
                colour = "#ffffff"
            elif cell["verdict"] == "pass":
                ratio = min(max(float(cell["ratio"] or 0.0), 1e-6), 1.0)
                shade = 0.25 + 0.6 * (1 - (ratio ** 0.25))
                colour = (shade * 0.4, 0.45 + shade * 0.4, shade * 0.4)
            else:
                colour = to_rgb(VERDICT_COLOURS.get(cell["verdict"], "#999999"))
            ax.add_patch(plt.Rectangle((j, i), 1, 1, color=colour))
    ax.set_xlim(0, len(names))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks([j + 0.5 for j in range(len(names))], names, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks([i + 0.5 for i in range(len(rows))], [f"{r['tier']}: {r['subject']} {r['dtype']}" for r in rows],
                  fontsize=5)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ["#3c8c3c", *VERDICT_COLOURS.values()]]
    ax.legend(handles, ["pass (darker: closer to the tolerance)", *VERDICT_COLOURS], fontsize=6,
              loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_title("conformance to PyTorch per implementation", fontsize=9, pad=20)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
