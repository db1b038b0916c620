"""Command line: `python -m reference {accuracy,calibrate,conform,fetch,models,scoreboard}`."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .data import DATASET_NAMES


def _add_accuracy(subparsers) -> None:
    p = subparsers.add_parser(
        "accuracy",
        help="train the zoo, compare with baselines, write a report (default: digits, CPU)",
        description="Train zoo models, gate their test accuracy against the distributions in baselines/ and write "
        "a report. Exits 1 on a regression, a floor miss or a missing baseline, 2 on a usage error.",
    )
    p.add_argument("--dataset", choices=DATASET_NAMES, default="digits")
    p.add_argument("--framework", choices=("numpy", "torch", "all"), default="all")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto",
                   help="torch device; auto = cuda when available (NumPy always runs on the CPU)")
    p.add_argument("--models", nargs="+", metavar="NAME", help="zoo models (default: all that train on the dataset)")
    p.add_argument("--epochs", type=int, help="override each recipe's epochs")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--seeds", type=int, default=None, metavar="K",
                   help="train seeds SEED..SEED+K-1 of every run and gate them together (default: the recipe's "
                   "gate_seeds, 3 for the tiny digits models, else 1); with --update-baselines the K runs form the new "
                   "baseline (default and minimum: the recipe's baseline_seeds, 10 for the tiny digits models, 5 for "
                   "simple_cnn, 3 for resnet18 and MNIST)")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $REFERENCE_DATA_DIR or "
                   "~/.cache/reference)")
    p.add_argument("--report-dir", default="reports/accuracy")
    p.add_argument("--baselines-dir", default=None, help="default: the repository's baselines/")
    p.add_argument("--update-baselines", action="store_true",
                   help="record the runs made as the new baselines, all or none (deliberately; never implicit); "
                   "refused when the runs fail the baselines they would replace")
    p.add_argument("--accept-regression", action="store_true",
                   help="with --update-baselines: replace baselines the runs fail (a deliberate change); each such "
                   "baseline records the verdict it was accepted over")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for BLAS and torch while training (default 1: reproducible across machines, "
                   "robust on shared cores; 0 = the libraries' defaults)")
    p.add_argument("--jitter", type=int, metavar="N", default=None,
                   help="emulate another machine: move every initial parameter by one ulp, directions drawn from N")
    p.add_argument("--jobs", type=int, default=0, metavar="N",
                   help="CPU trainings at once, each in its own process (default 0: $REFERENCE_JOBS, else the cores "
                   "this process may use divided by --threads); results do not depend on it")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_fetch(subparsers) -> None:
    p = subparsers.add_parser("fetch", help="put a dataset on disk (MNIST IDX files, checksum-verified)")
    p.add_argument("dataset", choices=("mnist",))
    p.add_argument("--data-dir", help="destination (default: $REFERENCE_DATA_DIR or ~/.cache/reference)")


def _add_calibrate(subparsers) -> None:
    from .calibration import DEFAULT_FAULT_MODELS, FAULTS, VARIANTS

    p = subparsers.add_parser(
        "calibrate", help="measure the accuracy gate's false alarms and power; derive the hard floors",
        description="Train every model on unseen seeds on each emulated machine (false alarms) and with injected "
        "faults (power), gate them against the committed baselines and write reports/calibration/. Exits 1 when "
        "any clean run fails its gate.")
    p.add_argument("--dataset", choices=DATASET_NAMES, default="digits")
    p.add_argument("--models", nargs="+", metavar="NAME", help="zoo models (default: all that train on the dataset)")
    p.add_argument("--framework", choices=("numpy", "torch", "all"), default="all")
    p.add_argument("--seeds", type=int, default=20, help="clean seeds per variant (default 20)")
    p.add_argument("--variants", nargs="+", metavar="NAME", choices=list(VARIANTS),
                   help=f"emulated machines (default all: {', '.join(VARIANTS)})")
    p.add_argument("--faults", nargs="+", metavar="NAME", choices=list(FAULTS),
                   help=f"injected faults (default all: {', '.join(FAULTS)})".replace("%", "%%"))
    p.add_argument("--fault-models", nargs="+", metavar="NAME",
                   help=f"models the faults are injected into (default: {' '.join(DEFAULT_FAULT_MODELS)})")
    p.add_argument("--fault-seeds", type=int, default=10, help="seeds per fault (default 10)")
    p.add_argument("--jobs", type=int, default=0,
                   help="CPUs of the Ray started here (default: the available cores); ignored with --address")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="run the sweep on the Ray cluster at ADDR (default: $RAY_ADDRESS, else a Ray started here)")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files")
    p.add_argument("--baselines-dir", default=None, help="default: the repository's baselines/")
    p.add_argument("--report-dir", default="reports/calibration")
    p.add_argument("--update-floors", action="store_true",
                   help="write each run's derived hard floor into its baseline file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_conform(subparsers) -> None:
    p = subparsers.add_parser(
        "conform", help="check a NumPy layer namespace against PyTorch and write its compliance table",
        description="Run the conformance engine (op, oracle, model and trajectory tiers) on the layer namespace MODULE "
        "(an importable module mirroring torch.nn) and write conformance.json, conformance.md and plots into the "
        "report dir. Layers it lacks are reported as not implemented. Exits 0 when everything it implements "
        "conforms, 1 otherwise, 2 on a usage error.")
    p.add_argument("module", metavar="MODULE", help="import name of the layer namespace, e.g. reference.numpy_nn")
    p.add_argument("--report-dir", default="reports/conformance")
    p.add_argument("--xfails", metavar="FILE", help="known failures: one check id or glob (* ?) per line, # comments")
    p.add_argument("-n", dest="jobs", metavar="N", help="pytest-xdist worker processes (a number or 'auto')")
    p.add_argument("--dtypes", nargs="+", choices=("float64", "float32"), default=["float64", "float32"])
    p.add_argument("--select", nargs="+", metavar="GLOB", default=[],
                   help="run only the checks whose id matches, e.g. 'op-Conv2d-*' or '*-float64-cpu'")
    p.add_argument("--max-examples", type=int, default=None,
                   help="hypothesis examples per check (default: the namespace's MAX_EXAMPLES, else 25)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="time limit of one check, all its examples (default 600); past it the check is crashed")
    p.add_argument("--skip-slow", action="store_true",
                   help="leave out the heavy checks (resnet50, resnext50_32x4d and the dilated resnet50 of the "
                   "model tier)")


def _add_scoreboard(subparsers) -> None:
    from .scoreboard import IMPLEMENTATIONS

    p = subparsers.add_parser(
        "scoreboard", help="conformance of reference.numpy_nn and every framework adapter, in one table",
        description="Run `conform` on reference.numpy_nn and each framework adapter (JAX/Flax, torch.compile, ONNX "
        "Runtime, tinygrad), each with its shipped xfails file, and write one combined table (scoreboard.md, "
        ".json, .png) into the report dir. Adapters whose framework is not installed are listed as such. Exits 0 "
        "when everything that ran conforms (explained differences included), 1 otherwise, 2 on a usage error.")
    p.add_argument("--implementations", nargs="+", metavar="NAME", choices=list(IMPLEMENTATIONS),
                   help=f"default: all of {', '.join(IMPLEMENTATIONS)}")
    p.add_argument("--report-dir", default="reports/scoreboard")
    p.add_argument("-n", dest="jobs", metavar="N", help="pytest-xdist workers per implementation (a number or 'auto')")
    p.add_argument("--max-examples", type=int, default=None,
                   help="hypothesis examples per check (default: each adapter's MAX_EXAMPLES, else 25)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="time limit of one check")
    p.add_argument("--slow", action="store_true",
                   help="include the heavy checks (resnet50, resnext50_32x4d, the dilated resnet50: minutes each)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reference", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_accuracy(subparsers)
    _add_calibrate(subparsers)
    _add_conform(subparsers)
    _add_fetch(subparsers)
    _add_scoreboard(subparsers)
    subparsers.add_parser("models", help="list the zoo's models, their inputs and datasets")
    return parser


def _models() -> int:
    from . import zoo

    for name in zoo.names():
        entry = zoo.spec(name)
        print(f"{name:12s} input {entry.input_shape}  classes {entry.num_classes}  datasets {list(entry.recipes)}")
    return 0


def _fetch(args) -> int:
    from pathlib import Path

    from .data import DataError, fetch_mnist

    if args.data_dir is not None and Path(args.data_dir).exists() and not Path(args.data_dir).is_dir():
        print(f"error: --data-dir {args.data_dir} is a file; expected a folder", file=sys.stderr)
        return 2
    try:
        path = fetch_mnist(args.data_dir)
    except DataError as error:
        print(f"fetch failed: {error}", file=sys.stderr)
        return 1
    print(f"MNIST IDX files verified in {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "models":
        return _models()
    if args.command == "fetch":
        return _fetch(args)
    if args.command == "conform":
        from .testing.conformance.cli import run_conform

        return run_conform(**_options(args))
    if args.command == "scoreboard":
        from .scoreboard import run_scoreboard

        return run_scoreboard(**_options(args))
    if args.command == "calibrate":
        from .calibration import run_calibration

        return run_calibration(**_options(args))
    from .accuracy import run_accuracy

    return run_accuracy(**_options(args))


def _options(args: argparse.Namespace) -> dict:
    """The subcommand's options as keyword arguments (argparse's names, without the subcommand)."""
    return {key: value for key, value in vars(args).items() if key != "command"}


def _exit_on_sigterm(signum, frame) -> None:
    """SIGTERM (a CI timeout, `kill`, a scheduler) unwinds like Ctrl-C, so no staging folder or worker is left."""
    raise SystemExit(128 + signum)


def cli() -> None:
    """The `reference` and `python -m reference` commands: `main` with SIGTERM handled like Ctrl-C, and a reader
    that stops early (`reference models | head -3`) ending the output quietly, as for other command-line tools."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error flushing at exit
        code = 128 + signal.SIGPIPE
    sys.exit(code)


if __name__ == "__main__":
    cli()
