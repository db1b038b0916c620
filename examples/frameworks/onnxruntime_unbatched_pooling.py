"""torch's ONNX exporter vs torch: 2-D pooling of an unbatched (C, H, W) input.

torch's 2-D pools accept (C, H, W). ONNX's pooling ops take (N, C, spatial...) only, and torch's TorchScript
exporter does not add the batch axis for pools (it does for Conv2d): MaxPool2d and AvgPool2d become 1-D pools
with 2-D attributes, which ONNX Runtime rejects, and AdaptiveAvgPool2d(1) becomes a GlobalAveragePool that
averages the last axis only: a silently wrong result. (The conformance adapter runs pools on (1, C, H, W).)

    python examples/frameworks/onnxruntime_unbatched_pooling.py
"""

import io
import warnings

import onnxruntime
import torch

x = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(0))  # (C, H, W)
print(f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}; input (C, H, W) = {tuple(x.shape)}")
for pool in (torch.nn.MaxPool2d(2), torch.nn.AvgPool2d(2), torch.nn.AdaptiveAvgPool2d(1)):
    stream = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation warning
        torch.onnx.export(pool, (x,), stream, dynamo=False, opset_version=17, input_names=["x"])
    expected = pool(x)
    try:
        session = onnxruntime.InferenceSession(stream.getvalue(), providers=["CPUExecutionProvider"])
    except Exception as error:
        print(f"{pool}: ONNX Runtime rejects the exported graph: {str(error).splitlines()[0]}")
        continue
    (got,) = session.run(None, {"x": x.numpy()})
    print(f"{pool}: torch {tuple(expected.shape)} {expected.flatten().tolist()}")
    print(f"    ONNX Runtime {got.shape} {got.flatten().tolist()}")
    if got.shape == tuple(expected.shape):
        print("    max |difference| =", (torch.from_numpy(got) - expected).abs().max().item())
