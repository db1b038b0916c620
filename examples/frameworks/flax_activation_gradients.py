"""JAX's relu and hard_tanh (Flax's `nnx.relu`, `nnx.hard_tanh`) differ from torch's gradients at two kinds of
point: relu blocks the gradient at NaN, hard_tanh passes it at its bounds -1 and 1.

- `jax.nn.relu` has a custom JVP `where(x > 0, g, 0)`: NaN > 0 is false, so the gradient at NaN is 0. torch's
  ReLU backward is `threshold_backward`: `x <= 0 ? 0 : g`, and NaN <= 0 is false, so the gradient passes (1).
- `jax.nn.hard_tanh` is `where(x > 1, 1, where(x < -1, -1, x))`: at x = -1 and x = 1 the inner `x` branch is taken,
  so the gradient is 1. torch's Hardtanh backward passes the gradient only strictly inside (min_val < x < max_val):
  0 at the bounds. (ReLU6 agrees: JAX's relu6 has a custom JVP that is 0 at 0 and 6, as torch.)
Forward values agree everywhere. Run: python examples/frameworks/flax_activation_gradients.py
"""

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

jax.config.update("jax_enable_x64", True)

for name, flax_fn, torch_fn, x in (("relu", nnx.relu, torch.relu, np.array([np.nan, -1.0, 0.0, 0.5])),
                                   ("hard_tanh", nnx.hard_tanh, torch.nn.functional.hardtanh,
                                    np.array([-1.0, 1.0, 0.5, 2.0]))):
    out, vjp = jax.vjp(flax_fn, jnp.asarray(x))
    (flax_grad,) = vjp(jnp.ones_like(out))
    xt = torch.tensor(x, requires_grad=True)
    torch_fn(xt).backward(torch.ones(len(x), dtype=torch.float64))
    print(f"{name} at {x}")
    print("  flax gradient: ", np.asarray(flax_grad))
    print("  torch gradient:", xt.grad.numpy())
