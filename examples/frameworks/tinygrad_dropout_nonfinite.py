"""Dropout of NaN / inf: torch's dropped elements are NaN, tinygrad's are 0.

torch's dropout multiplies: x * mask / (1 - p), and 0 * NaN = 0 * inf = NaN. tinygrad's selects:
(rand >= p).where(x, 0) / (1 - p), so a dropped NaN or inf becomes 0. The kept elements agree. Below both
frameworks drop the same elements (tinygrad's own mask, read back by dropping ones under the same seed).

    python examples/frameworks/tinygrad_dropout_nonfinite.py
"""

import numpy as np
import torch
from tinygrad import Tensor
from tinygrad.helpers import Context

x = np.array([np.nan, np.inf, -np.inf, 1.0, np.nan, np.inf, -np.inf, 2.0])
with Context(TRAINING=1):
    Tensor.manual_seed(3)
    out = Tensor(x).dropout(0.5).numpy()
    Tensor.manual_seed(3)  # the same draw on ones: the mask tinygrad applied
    mask = Tensor(np.ones_like(x)).dropout(0.5).numpy()
expected = (torch.tensor(x) * torch.tensor(mask)).numpy()  # torch's dropout given that mask: x * keep / (1 - p)
print("x             :", x)
print("kept          :", mask != 0)
print("torch (x*mask):", expected)
print("tinygrad      :", out)
