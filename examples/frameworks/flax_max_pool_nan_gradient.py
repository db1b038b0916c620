"""flax's max_pool sends the gradient of a window holding NaN to another element than torch does.

Both return NaN for a window that holds a NaN (forward values agree). torch's max-pool backward sends the window's
gradient to the element it chose as the maximum, and its CPU kernel takes a NaN as the maximum (`val > max ||
isnan(val)`: the last NaN of the window). `flax.nnx.max_pool` is `lax.reduce_window(max)`, whose JAX gradient is
XLA's select-and-scatter: it keeps its selected element while `selected >= next`, which is false whenever a NaN is
compared, so the selection moves on to whatever follows a NaN (the NaN itself only when it ends the window).
Windows of finite values and +-inf agree, ties included (the first maximum in both).
Run: python examples/frameworks/flax_max_pool_nan_gradient.py
"""

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

jax.config.update("jax_enable_x64", True)

for window in ([1.0, np.nan, 2.0], [np.nan, 3.0, 1.0], [np.nan, np.nan, 1.0], [1.0, 2.0, 2.0], [np.inf, 1.0, np.inf]):
    x = np.array(window).reshape(1, 1, 1, 3)  # NCHW, one window of 1 x 3
    out, vjp = jax.vjp(lambda a: nnx.max_pool(a, (1, 3), (1, 3)), jnp.asarray(x.transpose(0, 2, 3, 1)))
    (flax_grad,) = vjp(jnp.ones_like(out))
    xt = torch.tensor(x, requires_grad=True)
    torch_out = torch.nn.functional.max_pool2d(xt, (1, 3))
    torch_out.backward(torch.ones_like(torch_out))
    print(f"window {window}: max flax {np.asarray(out).item()}, torch {torch_out.item()}; "
          f"gradient flax {np.asarray(flax_grad).ravel()}, torch {xt.grad.numpy().ravel()}")
