"""Flax's BatchNorm updates running variance with the *biased* batch variance; torch with the *unbiased* one.

Both normalise a training batch with the biased variance (mean of squared deviations, divisor n). For the running
estimate torch uses the unbiased variance (divisor n - 1, Bessel's correction; documented in torch.nn.BatchNorm2d:
"the running variance is computed with the unbiased estimator"), while flax.nnx.BatchNorm (and linen's) blends
the same biased variance it normalised with into `var`. After one training step with momentum m (Flax's 1 - m):

    torch: running_var = (1 - m) * running_var + m * var_biased * n / (n - 1)
    flax:  var         = (1 - m) * var         + m * var_biased

so the two differ by m * var_biased / (n - 1), here n = N * H * W values per channel. Forward outputs, gradients
and running means agree. Run: python examples/frameworks/flax_batchnorm_running_var.py
"""

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

jax.config.update("jax_enable_x64", True)

momentum = 0.1  # torch's; Flax's momentum is 1 - it
x = np.random.default_rng(0).standard_normal((4, 3, 2, 2))  # n = 4 * 2 * 2 = 16 values per channel
n = x.shape[0] * x.shape[2] * x.shape[3]

bn_torch = torch.nn.BatchNorm2d(3, momentum=momentum).double().train()
out_torch = bn_torch(torch.from_numpy(x)).detach().numpy()

bn_flax = nnx.BatchNorm(3, axis=1, momentum=1 - momentum, use_fast_variance=False, param_dtype=jnp.float64,
                        rngs=nnx.Rngs(0))
for stat in (bn_flax.mean, bn_flax.var):  # Flax creates its batch statistics in float32 whatever param_dtype
    stat.set_value(stat.get_value().astype(jnp.float64))
out_flax = np.asarray(bn_flax(jnp.asarray(x), use_running_average=False))

torch_var, flax_var = bn_torch.running_var.numpy(), np.asarray(bn_flax.var.get_value())
biased = x.var(axis=(0, 2, 3))
print("forward outputs, max |diff|:      ", np.abs(out_flax - out_torch).max())
flax_mean = np.asarray(bn_flax.mean.get_value())
print("running mean, max |diff|:         ", np.abs(flax_mean - bn_torch.running_mean.numpy()).max())
print("torch running_var:                ", torch_var)
print("flax  var:                        ", flax_var)
print("difference:                       ", torch_var - flax_var)
print("expected m * var_biased / (n - 1):", momentum * biased / (n - 1))
print("torch = (1-m) + m*unbiased:       ", np.allclose(torch_var, (1 - momentum) + momentum * biased * n / (n - 1)))
print("flax  = (1-m) + m*biased:         ", np.allclose(flax_var, (1 - momentum) + momentum * biased))
