"""flax's Dropout zeroes dropped NaN / inf inputs; torch's multiplies them by 0, which gives NaN.

`flax.nnx.Dropout` (and linen's) computes `lax.select(keep, x / (1 - p), 0)`: a dropped element is replaced by 0
whatever it held (and rate=1.0 returns `zeros_like(x)`). torch's dropout computes `x * noise` with noise 0 or
1 / (1 - p) (ATen's `_dropout_impl`; `input * 0` for p=1), so a dropped NaN stays NaN and a dropped +-inf becomes
NaN, as IEEE multiplication defines. Finite inputs agree; gradients agree (0 where dropped in both).
Run: python examples/frameworks/flax_dropout_nonfinite.py
"""

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

x = np.array([np.nan, np.inf, -np.inf, 1.5] * 4, dtype=np.float32)

for p in (1.0, 0.5):
    flax_out = np.asarray(nnx.Dropout(p, deterministic=False)(jnp.asarray(x), rngs=jax.random.key(0)))
    torch_out = torch.nn.functional.dropout(torch.from_numpy(x), p=p, training=True).numpy()
    print(f"p={p}: non-finite inputs {np.sum(~np.isfinite(x))}, zeros in flax's output {np.sum(flax_out == 0)}, "
          f"NaN in torch's output {np.sum(np.isnan(torch_out))}")
    print("  flax: ", flax_out)
    print("  torch:", torch_out)
