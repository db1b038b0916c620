"""tinygrad's Conv2d(padding='same') pads each axis by the other axis's dilation; torch by its own.

tinygrad.nn.Conv2d resolves 'same' as
    [(d*(k-1)//2, d*(k-1) - d*(k-1)//2) for d, k in zip(make_tuple(dilation, 2), kernel_size[::-1])]
reversing the kernel sizes into (W, H) order but not the dilations: with dilation (dh, dw) the width gets
dh*(kw-1) and the height dw*(kh-1). For equal dilations (or 1x1 kernels) that is right; for dilation=(2, 1) the
output is no longer 'same'-sized (or the padded input is smaller than the dilated kernel and tinygrad asserts).

    python examples/frameworks/tinygrad_conv_same_dilation.py
"""

import numpy as np
import torch
from tinygrad import Tensor
from tinygrad import nn as tnn

rng = np.random.default_rng(0)
x, w = rng.standard_normal((1, 1, 5, 5)), rng.standard_normal((1, 1, 3, 3))

expected = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding="same", dilation=(2, 1)).numpy()
conv = tnn.Conv2d(1, 1, 3, padding="same", dilation=(2, 1), bias=False)
conv.weight = Tensor(w)
print("torch padding (left, right, top, bottom): (1, 1, 2, 2); tinygrad:", conv.padding)
actual = conv(Tensor(x)).numpy()
print("torch output shape   :", expected.shape)
print("tinygrad output shape:", actual.shape)
if actual.shape == expected.shape:
    print("max |difference|:", np.abs(actual - expected).max())
