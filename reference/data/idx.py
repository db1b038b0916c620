"""IDX files (the MNIST container: magic number, big-endian int32 dimensions, raw bytes) and atomic writes."""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
import uuid
import zlib
from pathlib import Path

import numpy as np

from .base import DataError

UNSIGNED_BYTE = 0x08


def idx_magic(ndim: int) -> int:
    """Magic number of an unsigned-byte IDX file with `ndim` dimensions (0x00000803 for ndim 3)."""
    return (UNSIGNED_BYTE << 8) | ndim


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as the bytes of an IDX file."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"IDX writer: expected a uint8 array, got {array.dtype}")
    header = struct.pack(f">I{array.ndim}I", idx_magic(array.ndim), *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` via a temporary file in the same folder and `os.replace`: all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")  # created with the umask's permissions
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file, atomically; a `.gz` suffix gzips it (reproducibly, mtime 0)."""
    path = Path(path)
    data = idx_bytes(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    return atomic_write_bytes(path, data)


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read an unsigned-byte IDX file (raw or `.gz`); a DataError names the file, what was expected and found."""
    path = Path(path)
    return parse_idx(read_bytes(path), path, expected_magic)


def parse_idx(data: bytes, path: Path, expected_magic: int | None = None) -> np.ndarray:
    """The array in the bytes of an IDX file read from `path` (named in errors); see `read_idx`."""
    if len(data) < 4:
        raise DataError(f"{path}: expected an IDX file, found only {len(data)} bytes (the magic number alone is 4)")
    magic = int.from_bytes(data[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise DataError(
            f"{path}: expected magic number 0x{expected_magic:08X} ({_describe(expected_magic)}), found 0x{magic:08X}"
        )
    ndim = magic & 0xFF
    if magic >> 8 != UNSIGNED_BYTE or ndim == 0:
        raise DataError(f"{path}: expected an unsigned-byte IDX magic number 0x000008NN, found 0x{magic:08X}")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path}: truncated header: {ndim} dimensions need {header_size} bytes, found {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected, found = math.prod(shape), len(data) - header_size
    if found != expected:
        problem = "file is truncated" if found < expected else "file has trailing bytes"
        raise DataError(f"{path}: {problem}: header says shape {shape}, i.e. {expected} data bytes, found {found}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped for a `.gz` suffix."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(f"{path}: expected a complete gzip file, found a corrupt or truncated one ({err})") from err
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err})") from err


def _describe(magic: int) -> str:
    """Words for an unsigned-byte IDX magic number, e.g. 'unsigned bytes, 3 dimensions'."""
    return f"unsigned bytes, {magic & 0xFF} dimension{'s' if magic & 0xFF != 1 else ''}"
