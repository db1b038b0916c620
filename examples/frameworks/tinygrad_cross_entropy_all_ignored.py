"""Cross-entropy with reduction='mean' when every target is ignore_index: torch's gradient is 0, tinygrad's NaN.

Both losses are 0 / 0 = NaN. torch's nll_loss backward divides by the total weight only when it is nonzero, so
the logits' gradient is 0; tinygrad's Tensor.sparse_categorical_crossentropy is -sum / mask.sum() differentiated
as written: 0 / 0 = NaN in every element.

    python examples/frameworks/tinygrad_cross_entropy_all_ignored.py
"""

import numpy as np
import torch
from tinygrad import Tensor

logits, targets = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]]), np.array([1, 1])

x = torch.tensor(logits, requires_grad=True)
loss = torch.nn.functional.cross_entropy(x, torch.tensor(targets), ignore_index=1)
loss.backward()
print("torch    loss:", loss.item(), "gradient:", x.grad.numpy().tolist())

t = Tensor(logits)
tloss = t.sparse_categorical_crossentropy(Tensor(targets), ignore_index=1)
(grad,) = tloss.gradient(t)
print("tinygrad loss:", tloss.item(), "gradient:", grad.numpy().tolist())
