"""Synthetic 32x32 RGB shapes (circle, square, diagonal, ring) with varied position, size and colour."""

from __future__ import annotations

import numpy as np

from .base import Dataset

SHAPE_NAMES = ("circle", "square", "diagonal", "ring")
IMAGE_SIZE = 32
TEST_FRACTION = 0.2


def make_shapes_dataset(seed: int | None = 0, per_class: int = 250, noise: float = 0.1) -> Dataset:
    """`per_class` images per shape, noise N(0, noise) clipped to [0, 1]; stratified 80/20 split, all from `seed`."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(SHAPE_NAMES)), per_class))
    images = draw_shapes(labels, rng, noise)
    test = _stratified_test_mask(labels, TEST_FRACTION)
    return Dataset(
        x_train=images[~test],
        y_train=labels[~test],
        x_test=images[test],
        y_test=labels[test],
        name="shapes",
        num_classes=len(SHAPE_NAMES),
        input_shape=(3, IMAGE_SIZE, IMAGE_SIZE),
    )


def draw_shapes(labels: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Float32 images (N, 3, 32, 32) in [0, 1], one shape per image: class k is SHAPE_NAMES[k]."""
    n = len(labels)
    extent = rng.uniform(5.0, 10.0, n)  # radius, half-side or half-length in pixels
    cx = rng.uniform(extent + 1, IMAGE_SIZE - 2 - extent)
    cy = rng.uniform(extent + 1, IMAGE_SIZE - 2 - extent)
    width = rng.uniform(1.5, 3.0, n)  # ring width, diagonal stroke width
    slope = rng.choice([-1.0, 1.0], n)  # diagonal direction: "\" or "/"
    foreground = rng.uniform(0.5, 1.0, (n, 3))
    background = rng.uniform(0.0, 0.4, (n, 3))

    grid = np.arange(IMAGE_SIZE, dtype=np.float64)
    dx = grid[None, None, :] - cx[:, None, None]
    dy = grid[None, :, None] - cy[:, None, None]
    r = np.hypot(dx, dy)
    e, w = extent[:, None, None], width[:, None, None]
    box = np.maximum(np.abs(dx), np.abs(dy))
    masks = np.stack(
        [
            r <= e,  # circle
            box <= 0.8 * e,  # square
            (np.abs(dx - slope[:, None, None] * dy) <= w * np.sqrt(0.5)) & (box <= e),  # diagonal
            (r <= e) & (r >= e - w),  # ring
        ],
        axis=1,
    )
    mask = masks[np.arange(n), labels][:, None]  # (N, 1, H, W)

    images = np.where(mask, foreground[:, :, None, None], background[:, :, None, None]).astype(np.float32)
    images += noise * rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(images, 0.0, 1.0, out=images)


def _stratified_test_mask(labels: np.ndarray, fraction: float) -> np.ndarray:
    """True for the first `fraction` of each class's (already shuffled) occurrences."""
    test = np.zeros(len(labels), dtype=bool)
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        test[members[: round(fraction * len(members))]] = True
    return test
