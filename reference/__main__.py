"""Command line: `python -m reference {accuracy,fetch,models}`."""

from __future__ import annotations

import argparse
import sys

DATASETS = ("digits", "mnist", "shapes")


def _add_accuracy(subparsers) -> None:
    p = subparsers.add_parser(
        "accuracy",
        help="train the zoo, compare with baselines, write a report (default: digits, CPU)",
        description="Train zoo models, gate their test accuracy against baselines/ and write a report. "
        "Exits 1 on a regression.",
    )
    p.add_argument("--dataset", choices=DATASETS, default="digits")
    p.add_argument("--framework", choices=("numpy", "torch", "all"), default="all")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto",
                   help="torch device; auto = cuda when available (NumPy always runs on the CPU)")
    p.add_argument("--models", nargs="+", metavar="NAME", help="zoo models (default: all that train on the dataset)")
    p.add_argument("--epochs", type=int, help="override each recipe's epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $REFERENCE_DATA_DIR or "
                   "~/.cache/reference)")
    p.add_argument("--report-dir", default="reports/accuracy")
    p.add_argument("--baselines-dir", default=None, help="default: the repository's baselines/")
    p.add_argument("--update-baselines", action="store_true",
                   help="rewrite the baselines of the runs made (deliberately; never implicit)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for BLAS and torch while training (default 1: reproducible across machines, "
                   "robust on shared cores; 0 = the libraries' defaults)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_fetch(subparsers) -> None:
    p = subparsers.add_parser("fetch", help="put a dataset on disk (MNIST IDX files, checksum-verified)")
    p.add_argument("dataset", choices=("mnist",))
    p.add_argument("--data-dir", help="destination (default: $REFERENCE_DATA_DIR or ~/.cache/reference)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reference", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_accuracy(subparsers)
    _add_fetch(subparsers)
    subparsers.add_parser("models", help="list the zoo's models, their inputs and datasets")
    return parser


def _models() -> int:
    from . import zoo

    for name in zoo.names():
        entry = zoo.spec(name)
        print(f"{name:12s} input {entry.input_shape}  classes {entry.num_classes}  datasets {list(entry.recipes)}")
    return 0


def _fetch(args) -> int:
    from .data import DataError, fetch_mnist

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
    from .accuracy import run_accuracy

    return run_accuracy(args)


if __name__ == "__main__":
    sys.exit(main())
