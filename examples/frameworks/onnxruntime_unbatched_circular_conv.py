"""torch's ONNX exporter vs torch: a Conv2d with padding_mode='circular' on an unbatched (C, H, W) input.

torch runs it; torch.onnx.export (the TorchScript exporter) aborts the whole Python process (a C++ abort in the
circular padding's Slice nodes), so it cannot even be caught. The export runs in a child process here. The same
layer on a batched (1, C, H, W) input exports and runs in ONNX Runtime. (The conformance adapter runs Conv2d and
the 2-D pools on (1, C, H, W).)

    python examples/frameworks/onnxruntime_unbatched_circular_conv.py
"""

import subprocess
import sys

import torch

EXPORT = """
import io, warnings, torch
warnings.simplefilter("ignore")
conv = torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular")
torch.onnx.export(conv, (torch.randn({shape}),), io.BytesIO(), dynamo=False, opset_version=17)
print("exported")
"""

conv = torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular")
print(f"torch {torch.__version__}; eager torch on (1, 5, 5): output {tuple(conv(torch.randn(1, 5, 5)).shape)}")
for shape in ("1, 1, 5, 5", "1, 5, 5"):
    child = subprocess.run([sys.executable, "-c", EXPORT.format(shape=shape)], capture_output=True, text=True)
    outcome = child.stdout.strip() or f"the process died (exit status {child.returncode})"
    print(f"torch.onnx.export on ({shape}): {outcome}")
