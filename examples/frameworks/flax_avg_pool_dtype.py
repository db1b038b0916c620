"""flax's avg_pool(count_include_pad=False) returns float64 for float32 input when JAX's x64 mode is on.

`flax.linen.avg_pool` (re-exported as `flax.nnx.avg_pool`) divides the window sums by a second pooling of
`jnp.ones(div_shape)`, created without a dtype: under `jax_enable_x64` that array is float64 and promotes the
result to float64 (torch's avg_pool2d keeps the input's float32). With count_include_pad=True (the default) the
divisor is a Python int and float32 stays float32. The values agree; only the dtype changes (and with it, the
rounding: the division happens in float64).

Any float64-capable JAX program turns x64 on globally, so float32 models pooling without padding counts silently
compute (and return) float64 from there on. Run: python examples/frameworks/flax_avg_pool_dtype.py
"""

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

jax.config.update("jax_enable_x64", True)

x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)  # NCHW
expected = torch.nn.functional.avg_pool2d(torch.from_numpy(x), 3, stride=2, padding=1, count_include_pad=False)

nhwc = jnp.asarray(x.transpose(0, 2, 3, 1))
for count_include_pad in (True, False):
    out = nnx.avg_pool(nhwc, (3, 3), (2, 2), ((1, 1), (1, 1)), count_include_pad=count_include_pad)
    print(f"count_include_pad={count_include_pad}: flax dtype {out.dtype}, torch dtype {expected.dtype} "
          f"(input float32)")
out = np.asarray(nnx.avg_pool(nhwc, (3, 3), (2, 2), ((1, 1), (1, 1)), count_include_pad=False)).transpose(0, 3, 1, 2)
print("count_include_pad=False values, max |flax - torch|:", np.abs(out - expected.numpy().astype(np.float64)).max())
