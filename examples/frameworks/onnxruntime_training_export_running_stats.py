"""torch's ONNX exporter in training mode stores running statistics one batch ahead.

`torch.onnx.export(..., dynamo=False, training=TrainingMode.TRAINING)` traces the module by running its forward,
and a training-mode BatchNorm2d forward updates running_mean / running_var; the exporter then writes those
updated buffers as the graph's initializers (and the module is left updated too). ONNX Runtime's training-mode
BatchNormalization updates them once more, so the graph's new running_mean is two momentum steps from the
module's. (The conformance adapter exports from a copy and writes the module's own state into the initializers.)

    python examples/frameworks/onnxruntime_training_export_running_stats.py
"""

import io
import warnings

import onnx
import onnxruntime
import torch
from onnx import numpy_helper

bn = torch.nn.BatchNorm2d(2).train()
x = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(0)) * 2 + 1
before = bn.running_mean.clone()
expected = torch.nn.BatchNorm2d(2).train()
expected(x)  # one training forward from the same start: torch's new running_mean

stream = io.BytesIO()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation warning
    torch.onnx.export(bn, (x,), stream, dynamo=False, opset_version=17, input_names=["x"],
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
model = onnx.load_from_string(stream.getvalue())
stored = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
node = next(n for n in model.graph.node if n.op_type == "BatchNormalization")
model.graph.output.append(onnx.helper.make_empty_tensor_value_info(node.output[1]))  # the new running_mean
session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
_, new_mean = session.run(None, {"x": x.numpy()})

print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}")
print("module's running_mean before export   :", before.numpy())
print("running_mean stored in the ONNX graph :", stored["running_mean"], "(and the module's now:",
      bn.running_mean.numpy(), ")")
print("torch after one training forward      :", expected.running_mean.numpy())
print("ORT's new running_mean from the graph :", new_mean)
print("max |ORT - torch|                     :", abs(new_mean - expected.running_mean.numpy()).max())
