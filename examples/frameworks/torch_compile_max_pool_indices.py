"""torch.compile (inductor, CPU) vs eager torch: MaxPool2d's index of the maximum, and so its gradient.

kernel_size=2, stride=(3, 2), padding=(0, 1) on a (1, 1, 4, 1) input has one window: rows 0-1 of the only column
(and a padded column). The compiled max_pool2d_with_indices returns the right maximum but the index of row 0
where the maximum is in row 1, and its backward sends the gradient there: a wrong gradient, silently.

    python examples/frameworks/torch_compile_max_pool_indices.py
"""

import torch

pool = torch.nn.MaxPool2d(2, stride=(3, 2), padding=(0, 1), return_indices=True)
compiled = torch.compile(pool, backend="inductor", fullgraph=True, dynamic=False)
x = torch.tensor([[[[-1.0], [0.5], [0.25], [-0.75]]]], dtype=torch.float64)  # (1, 1, 4, 1): the max is row 1

x_eager, x_compiled = x.clone().requires_grad_(), x.clone().requires_grad_()
(out_eager, index_eager), (out_compiled, index_compiled) = pool(x_eager), compiled(x_compiled)
out_eager.sum().backward()
out_compiled.sum().backward()
print(f"torch {torch.__version__}; input column {x.flatten().tolist()}")
print("maximum  eager", out_eager.flatten().tolist(), " compiled", out_compiled.flatten().tolist())
print("index    eager", index_eager.flatten().tolist(), " compiled", index_compiled.flatten().tolist())
print("gradient eager", x_eager.grad.flatten().tolist(), " compiled", x_compiled.grad.flatten().tolist())
print("max |gradient difference| =", (x_eager.grad - x_compiled.grad).abs().max().item())
