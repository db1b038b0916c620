"""float32 training-mode batch norm: tinygrad's gradients can be ~10x further from float64 than torch's.

torch's CPU batch norm backward is a closed-form kernel that accumulates float32 sums in double. tinygrad's is
its autodiff of the float32 forward formula (mean, variance of x - mean, rsqrt), summed in float32. With few
values per channel the backward cancels most of the upstream gradient and 1/sigma amplifies what is left, so
the rounding of the float32 sums shows: here (a 1x1 convolution into a batch norm over 30 values per channel)
tinygrad's conv-weight gradient is 3.0e-5 from float64 where torch's float32 is 2.9e-6, over the conformance
budget (4x torch's float32 error + 64 float32 ulps of max(1, |gradient|)).

    python examples/frameworks/tinygrad_batch_norm_float32.py
"""

import numpy as np
import torch
from tinygrad import Tensor
from tinygrad import nn as tnn
from tinygrad.helpers import Context

rng = np.random.default_rng(142)
x, w = rng.standard_normal((2, 1, 3, 5)), rng.uniform(-1, 1, (3, 1, 1, 1))
grad_out = rng.standard_normal((2, 3, 3, 5))
gamma, beta = rng.uniform(0.5, 2, 3), rng.standard_normal(3)


def torch_weight_gradient(dtype):
    weight = torch.tensor(w, dtype=dtype, requires_grad=True)
    out = torch.nn.functional.batch_norm(torch.nn.functional.conv2d(torch.tensor(x, dtype=dtype), weight), None,
                                         None, torch.tensor(gamma, dtype=dtype), torch.tensor(beta, dtype=dtype),
                                         training=True)
    out.backward(torch.tensor(grad_out, dtype=dtype))
    return weight.grad.double().numpy()


exact, torch32 = torch_weight_gradient(torch.float64), torch_weight_gradient(torch.float32)
bn = tnn.BatchNorm2d(3, track_running_stats=False)
bn.weight, bn.bias = Tensor(gamma.astype(np.float32)), Tensor(beta.astype(np.float32))
weight = Tensor(w.astype(np.float32))
with Context(TRAINING=1):
    out = bn(Tensor(x.astype(np.float32)).conv2d(weight))
(tiny32,) = out.gradient(weight, gradient=Tensor(grad_out.astype(np.float32)))
tiny32 = tiny32.numpy().astype(np.float64)

budget = 4 * np.abs(torch32 - exact).max() + 64 * np.finfo(np.float32).eps * max(1.0, np.abs(exact).max())
print("float64 gradient        :", exact.ravel())
print("max |torch32 - float64| :", np.abs(torch32 - exact).max())
print("max |tinygrad32 - float64|:", np.abs(tiny32 - exact).max(), f"(budget {budget:.2e})")
