"""The report's PNGs (matplotlib, Agg): learning curves, confusion matrices, accuracy vs baseline,
misclassified examples, and first-layer filters and feature maps."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .data import atomic_write_bytes  # noqa: E402
from .gate import FAILING  # noqa: E402

MAX_IMAGES = 10  # examples, filters or maps per run


def write_plots(report_dir: Path, records: list[dict], results: list, datasets: dict) -> list[Path]:
    """Draw every plot and write it atomically into `report_dir`; return the paths."""
    figures = {
        "learning_curves": learning_curves(records),
        "confusion_matrices": confusion_matrices(results),
        "accuracy_vs_baseline": accuracy_vs_baseline(records),
        "misclassified": misclassified(results, datasets),
        "first_layer_filters": first_layer(results, datasets, feature_maps=False),
        "first_layer_feature_maps": first_layer(results, datasets, feature_maps=True),
    }
    paths = []
    for name, figure in figures.items():
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        plt.close(figure)
        paths.append(atomic_write_bytes(Path(report_dir) / f"{name}.png", buffer.getvalue()))
    return paths


def _label(run) -> str:
    return f"{run.model_name} {run.framework}/{run.device}"


def learning_curves(records: list[dict]):
    """Per model and dataset: training loss and test accuracy per epoch, every framework/device overlaid."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        groups.setdefault((record["model"], record["dataset"]), []).append(record)
    fig, axes = plt.subplots(2, len(groups), figsize=(4 * len(groups), 6), squeeze=False)
    for column, ((model, dataset), runs) in enumerate(groups.items()):
        for run in runs:
            epochs = [h["epoch"] for h in run["history"]]
            label = f"{run['framework']}/{run['device']}"
            axes[0, column].plot(epochs, [h["loss"] for h in run["history"]], marker=".", label=label)
            axes[1, column].plot(epochs, [h["test_accuracy"] for h in run["history"]], marker=".", label=label)
        axes[0, column].set(title=f"{model} on {dataset}", ylabel="training loss", yscale="log")
        axes[1, column].set(xlabel="epoch", ylabel="test accuracy")
        axes[1, column].legend()
    return fig


def confusion_matrices(results: list):
    """One confusion matrix (rows: true class, columns: predicted) per run."""
    from sklearn.metrics import confusion_matrix

    fig, axes = plt.subplots(1, len(results), figsize=(3.2 * len(results), 3.4), squeeze=False)
    for ax, run in zip(axes[0], results, strict=True):
        classes = np.arange(max(run.targets.max(), run.predictions.max()) + 1)
        matrix = confusion_matrix(run.targets, run.predictions, labels=classes)
        ax.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(j, i, count, ha="center", va="center", fontsize=6, color="red" if i != j else "white")
        ax.set(title=_label(run), xlabel="predicted", ylabel="true", xticks=classes, yticks=classes)
    return fig


def accuracy_vs_baseline(records: list[dict]):
    """Each run's accuracy with its 95% interval, next to its baseline mean, regression threshold and hard floor."""
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(records) + 1.5))
    y = np.arange(len(records))
    accuracy = np.array([r["accuracy"] for r in records])
    colors = ["tab:red" if r["verdict"] in FAILING else "tab:blue" for r in records]
    for i, (record, color) in enumerate(zip(records, colors, strict=True)):
        ax.plot([record["ci_low"], record["ci_high"]], [i, i], color=color, linewidth=2)
    ax.scatter(accuracy, y, c=colors, zorder=3, label="accuracy (95% CI)")
    baselines = [(r["baseline"], i) for i, r in enumerate(records) if r["baseline"] is not None]
    if baselines:
        ax.scatter(*zip(*baselines, strict=True), marker="x", color="black", zorder=4, label="baseline")
    thresholds = [(r["threshold"], i) for i, r in enumerate(records) if r.get("threshold") is not None]
    if thresholds:
        ax.scatter(*zip(*thresholds, strict=True), marker="|", s=200, color="black", label="regression threshold")
    floors = [(r["floor"], i) for i, r in enumerate(records) if r["floor"] is not None]
    if floors:
        ax.scatter(*zip(*floors, strict=True), marker="|", s=200, color="tab:orange", label="floor")
    ax.set_yticks(y, [f"{r['model']} {r['framework']}/{r['device']} ({r['dataset']})" for r in records])
    ax.set(xlabel="test accuracy")
    ax.invert_yaxis()
    ax.legend(loc="lower left", fontsize=7)
    return fig


def misclassified(results: list, datasets: dict):
    """Up to MAX_IMAGES misclassified test images per run, titled true -> predicted."""
    fig, axes = plt.subplots(len(results), MAX_IMAGES, figsize=(MAX_IMAGES, 1.3 * len(results)), squeeze=False)
    for row, run in zip(axes, results, strict=True):
        wrong = np.flatnonzero(~run.correct)[:MAX_IMAGES]
        images = datasets[run.dataset].x_test[wrong]
        for ax in row:
            ax.axis("off")
        for ax, index, image in zip(row, wrong, images, strict=False):
            _show(ax, image)
            ax.set_title(f"{run.targets[index]}→{run.predictions[index]}", fontsize=7)
        row[0].text(-0.1, 0.5, _label(run), transform=row[0].transAxes, ha="right", va="center", fontsize=7)
    return fig


def first_layer(results: list, datasets: dict, feature_maps: bool):
    """Per run: the first conv layer's filters, or its feature maps on the first test image."""
    fig, axes = plt.subplots(len(results), MAX_IMAGES, figsize=(MAX_IMAGES, 1.2 * len(results)), squeeze=False)
    for row, run in zip(axes, results, strict=True):
        weight, maps = first_conv(run, datasets[run.dataset].x_test[:1])
        for ax in row:
            ax.axis("off")
        for ax, image in zip(row, maps[0][:, None] if feature_maps else weight, strict=False):
            _show(ax, image)
        row[0].text(-0.1, 0.5, _label(run), transform=row[0].transAxes, ha="right", va="center", fontsize=7)
    return fig


def first_conv(run, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weight (O, C, kh, kw) of the model's first Conv2d and its output on x (N, C, H, W), as NumPy."""
    conv = next(m for m in run.model.modules() if type(m).__name__ == "Conv2d")
    if run.framework == "numpy":
        return conv.weight.data, conv.eval()(x)
    import torch

    with torch.no_grad():
        maps = conv(torch.from_numpy(x).to(conv.weight.device))
    return conv.weight.detach().cpu().numpy(), maps.cpu().numpy()


def _show(ax, image: np.ndarray) -> None:
    """An image (C, H, W): grey for one channel, RGB (min-max scaled) for three, else the channel mean."""
    if image.shape[0] == 3:
        span = image.max() - image.min()
        ax.imshow(((image - image.min()) / (span if span else 1.0)).transpose(1, 2, 0))
    else:
        ax.imshow(image.mean(axis=0), cmap="gray")


def calibration_plot(summary: dict, path: Path) -> Path:
    """One panel per run: clean accuracies by emulated machine and faulted accuracies, with threshold and floor."""
    rows = summary["rows"]
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.6 + 0.35 * _plot_lines(rows)), squeeze=False)
    rng = np.random.default_rng(0)  # vertical scatter of the dots only
    for ax, row in zip(axes[:, 0], rows, strict=True):
        groups = [(variant, v["accuracies"]) for variant, v in row["by_variant"].items()]
        groups += [(f"fault: {name}", f["accuracies"]) for name, f in row["faults"].items()]
        for i, (label, accuracies) in enumerate(groups):
            color = "tab:red" if label.startswith("fault") else "tab:blue"
            ax.scatter(accuracies, i + rng.uniform(-0.2, 0.2, len(accuracies)), s=8, color=color, alpha=0.6)
        ax.axvline(row["threshold"], color="black", linestyle="--", label=f"threshold {row['threshold']:.4f}")
        ax.axvline(row["floor"], color="tab:orange", label=f"floor {row['floor']:.3f}")
        ax.set_yticks(range(len(groups)), [label for label, _ in groups], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{row['model']} {row['framework']}/{row['device']} on {row['dataset']}", fontsize=9)
        ax.legend(loc="lower left", fontsize=7)
    axes[-1, 0].set_xlabel("test accuracy")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def _plot_lines(rows: list[dict]) -> int:
    return sum(len(row["by_variant"]) + len(row["faults"]) + 2 for row in rows)
