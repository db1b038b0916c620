"""Max pooling with tied maxima or NaN in a window: tinygrad differs from torch.

- Ties: tinygrad's max reduction differentiates as mask / count (mask: the elements equal to the max), so tied
  maxima share the gradient equally; torch's max_pool2d gives it all to the first maximum (the index it returns).
- NaN: tinygrad's max is a compare-and-select loop that keeps a NaN only when it comes first in the window (a
  later NaN loses every comparison), where torch's max is NaN whenever the window holds one. When it is NaN, the
  mask compares NaN == NaN (false) and the count is 0: the whole window's gradient is NaN, where torch sends it to
  the NaN's position.

    python examples/frameworks/tinygrad_max_pool_ties_nan.py
"""

import numpy as np
import torch
from tinygrad import Tensor

windows = np.array([[1.0, 1.0, 0.0, 1.0], [np.nan, 1.0, 2.0, 0.0], [1.0, np.nan, 2.0, 0.0]])  # ties, NaN first, later
x = windows.reshape(3, 1, 2, 2)
xt = torch.tensor(x, requires_grad=True)
out = torch.nn.functional.max_pool2d(xt, 2)
out.backward(torch.ones_like(out))
t = Tensor(x)
tout = t.max_pool2d(2)
(tgrad,) = tout.gradient(t, gradient=Tensor(np.ones((3, 1, 1, 1))))
for i, window in enumerate(windows):
    print(f"window {window}")
    print(f"  torch    max {out.detach().numpy().ravel()[i]:4}  gradient {xt.grad.numpy().reshape(3, 4)[i]}")
    print(f"  tinygrad max {tout.numpy().ravel()[i]:4}  gradient {tgrad.numpy().reshape(3, 4)[i]}")
