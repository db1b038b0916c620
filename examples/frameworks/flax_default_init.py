"""Flax's default initialisation of Conv and Linear is not torch's.

flax.nnx.Conv and nnx.Linear initialise their kernel with `lecun_normal()` (a normal truncated at two standard
deviations, variance 1 / fan_in) and their bias with zeros. torch.nn.Conv2d and Linear draw both from
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5) for the weight). So Flax's kernels reach
beyond torch's bound (up to ~2.3 / sqrt(fan_in)) with a larger spread (std 1/sqrt(fan_in) vs 1/sqrt(3 fan_in)),
and its biases are all zero. Run: python examples/frameworks/flax_default_init.py
"""

import numpy as np
import torch
from flax import nnx

fan_in = 300
flax_linear = nnx.Linear(fan_in, 100, rngs=nnx.Rngs(0))
torch_linear = torch.nn.Linear(fan_in, 100)
bound = 1 / np.sqrt(fan_in)
kernel, weight = np.asarray(flax_linear.kernel.get_value()), torch_linear.weight.detach().numpy()
print(f"torch's bound 1/sqrt(fan_in) = {bound:.4f}")
print(f"weight: flax max |w| {np.abs(kernel).max():.4f}, std {kernel.std():.4f}; "
      f"torch max |w| {np.abs(weight).max():.4f}, std {weight.std():.4f}")
print(f"bias:   flax {np.unique(np.asarray(flax_linear.bias.get_value()))}; "
      f"torch min {torch_linear.bias.min().item():.4f}, max {torch_linear.bias.max().item():.4f}")
