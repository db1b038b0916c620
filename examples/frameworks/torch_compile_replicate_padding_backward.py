"""torch.compile (inductor, CPU) vs eager torch: the backward of a depthwise Conv2d with padding_mode='replicate'.

Conv2d(2, 2, 3, stride=2, padding=(0, 1), dilation=(1, 2), groups=2, padding_mode='replicate') on a (1, 2, 5, 4)
input: eager torch runs forward and backward; the compiled module's forward agrees, but its compiled backward
stops at inductor's runtime check of the fallback kernel replication_pad2d_backward, whose output has contiguous
strides (40, 20, 4, 1) where the compiled graph planned channels-last ones (40, 1, 8, 2): an AssertionError.

    python examples/frameworks/torch_compile_replicate_padding_backward.py
"""

import torch

torch.manual_seed(0)
conv = torch.nn.Conv2d(2, 2, 3, stride=2, padding=(0, 1), dilation=(1, 2), groups=2, padding_mode="replicate")
compiled = torch.compile(conv, backend="inductor", fullgraph=True, dynamic=False)
x = torch.randn(1, 2, 5, 4)
x_eager, x_compiled = x.clone().requires_grad_(), x.clone().requires_grad_()
out_eager, out_compiled = conv(x_eager), compiled(x_compiled)
print(f"torch {torch.__version__}")
print("forward  max |eager - compiled| =", (out_eager - out_compiled).abs().max().item())
out_eager.sum().backward()
print("eager backward: grad[input] sum =", x_eager.grad.sum().item())
try:
    out_compiled.sum().backward()
    print("compiled backward: grad[input] sum =", x_compiled.grad.sum().item(),
          " max |difference| =", (x_eager.grad - x_compiled.grad).abs().max().item())
except AssertionError as error:
    print("compiled backward raised AssertionError:", str(error).splitlines()[0])
    print("   ", str(error).splitlines()[1])
