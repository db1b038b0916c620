"""tinygrad's Adam bias-corrects float64 parameters with float32 powers of the betas; torch.optim.Adam in float64.

tinygrad.nn.optim.Adam (its LAMB with adam=True) keeps beta1^t and beta2^t as float32 tensors whatever the
parameters' dtype (and m, v in OPTIM_DTYPE, float32 by default). 1 - beta2^t in float32 is off by ~1e-5 relative
after one step (0.999f is not 0.999), so a float64 update differs from torch's by ~1e-6 relative: above float64's
rtol of 1e-7 (torch.testing's default). OPTIM_DTYPE=float64 does not change beta^t.

    python examples/frameworks/tinygrad_adam_float64.py
"""

import numpy as np
import torch
from tinygrad import Tensor
from tinygrad.helpers import Context
from tinygrad.nn.optim import Adam

param, grad = np.array([0.5, -1.0]), np.array([0.3, -0.2])

w = torch.nn.Parameter(torch.tensor(param))
opt = torch.optim.Adam([w], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
w.grad = torch.tensor(grad)
opt.step()
expected = w.detach().numpy()

t = Tensor(param)
with Context(DEFAULT_FLOAT="float64"):  # the learning rate in float64 too
    adam = Adam([t], lr=0.1, b1=0.9, b2=0.999, eps=1e-8)
t.grad = Tensor(grad)
with Context(TRAINING=1):
    adam.step()
actual = t.numpy()
print("torch    :", expected)
print("tinygrad :", actual, f"(beta2^t held as {adam.b2_t.dtype}: {adam.b2_t.numpy()[0]!r})")
print("max |difference|:", np.abs(actual - expected).max(), " max relative:", np.max(np.abs(actual - expected)
                                                                                    / np.abs(expected)))
