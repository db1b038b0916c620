"""ReLU, ReLU6 and Hardtanh at their kinks and on NaN / inf: tinygrad's conventions differ from torch's.

tinygrad writes them as selections: relu = (x > 0).where(x, 0), relu6 = relu(x) - relu(x - 6),
hardtanh = clamp = (x < lo).where(lo, x) then (x > hi).where(hi, x). So
- Hardtanh passes the gradient at x == min_val and x == max_val (torch: 0 there), and ReLU6 at x == 6;
- ReLU and ReLU6 map NaN to 0 (torch propagates NaN); ReLU6(+inf) is inf - inf = NaN (torch: 6).

    python examples/frameworks/tinygrad_activation_edges.py
"""

import numpy as np
import torch
from tinygrad import Tensor

x = np.array([-1.0, 0.0, 1.0, 6.0, np.nan, np.inf, -np.inf])
print("x:", x)
for name, torch_fn, tiny_fn in [("ReLU", torch.relu, Tensor.relu),
                                ("ReLU6", torch.nn.functional.relu6, Tensor.relu6),
                                ("Hardtanh(-1, 1)", torch.nn.functional.hardtanh, lambda t: t.hardtanh(-1, 1))]:
    xt = torch.tensor(x, requires_grad=True)
    out = torch_fn(xt)
    out.backward(torch.ones_like(out))
    t = Tensor(x)
    tout = tiny_fn(t)
    (tgrad,) = tout.gradient(t, gradient=Tensor(np.ones_like(x)))
    print(f"{name:16s} torch    out {out.detach().numpy()}  grad {xt.grad.numpy()}")
    print(f"{'':16s} tinygrad out {tout.numpy()}  grad {tgrad.numpy()}")
