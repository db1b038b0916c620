"""The default random generator of the NumPy layers, seeded like torch's (`manual_seed`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

_default = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reset the generator that layers use for initialisation and dropout when given no `rng`."""
    global _default
    _default = np.random.default_rng(seed)


def default_generator() -> np.random.Generator:
    return _default


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator as given, a fresh one from an int seed, or the default one for None."""
    if rng is None:
        return _default
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


@contextmanager
def seeded(seed: int) -> Iterator[np.random.Generator]:
    """Use a generator seeded with `seed` as the default inside the block, then restore the previous one."""
    global _default
    previous, _default = _default, np.random.default_rng(seed)
    try:
        yield _default
    finally:
        _default = previous
