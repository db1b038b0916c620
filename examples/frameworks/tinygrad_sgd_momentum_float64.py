"""tinygrad's SGD with momentum cannot step float64 parameters; torch.optim.SGD can.

tinygrad.nn.optim.SGD (its LARS with tcoef=0) keeps the momentum buffers in OPTIM_DTYPE (an environment variable,
float32 by default) and assigns momentum * buf + grad to them without casting it back: with float64 parameters and
gradients the sum is float64 and `Tensor.assign` raises "assign dtype mismatch". (Its LAMB/Adam casts m and v;
SGD without momentum has no buffer and works.) With OPTIM_DTYPE=float64 in the environment it steps as torch does.

    python examples/frameworks/tinygrad_sgd_momentum_float64.py
    OPTIM_DTYPE=float64 python examples/frameworks/tinygrad_sgd_momentum_float64.py
"""

import numpy as np
import torch
from tinygrad import Tensor
from tinygrad.helpers import Context
from tinygrad.nn.optim import SGD

param, grad = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.1, -0.2])

w = torch.nn.Parameter(torch.tensor(param))
opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
w.grad = torch.tensor(grad)
opt.step()
print("torch    :", w.detach().numpy())

t = Tensor(param)
sgd = SGD([t], lr=0.1, momentum=0.9)
t.grad = Tensor(grad)
try:
    with Context(TRAINING=1):
        sgd.step()
    print("tinygrad :", t.numpy())
    print("max |difference|:", np.abs(t.numpy() - w.detach().numpy()).max())
except RuntimeError as error:
    print(f"tinygrad : RuntimeError: {error} (momentum buffer {sgd.b[0].dtype}, parameter {t.dtype})")
