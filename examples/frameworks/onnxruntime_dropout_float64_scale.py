"""ONNX Runtime vs torch: a float64 training-mode dropout scales the kept values by 1 / (1 - p) in float32.

ONNX Runtime's CPU Dropout kernel computes the scale 1 / (1 - ratio) in float32, for float64 input too and
whether the ratio input is float32 (what torch's ONNX exporter writes, whatever the input's dtype) or float64:
for p = 0.9 the kept values are multiplied by 9.9999976 instead of 10 (2.4e-7 relative, above float64's
tolerance of 1e-7). torch's float64 dropout multiplies by 1 / (1 - 0.9) in float64. The graphs below are plain
ONNX Dropout nodes (no exporter involved).

    python examples/frameworks/onnxruntime_dropout_float64_scale.py
"""

import numpy as np
import onnxruntime
import torch
from onnx import TensorProto, helper

p = 0.9
x = np.random.default_rng(0).standard_normal((8, 8))  # float64
print(f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}, p = {p}")
for ratio_type in (TensorProto.FLOAT, TensorProto.DOUBLE):
    node = helper.make_node("Dropout", ["x", "ratio", "training_mode"], ["y", "mask"], seed=0)
    graph = helper.make_graph(
        [node], "dropout", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None),
         helper.make_tensor_value_info("mask", TensorProto.BOOL, None)],
        [helper.make_tensor("ratio", ratio_type, [], [p]),
         helper.make_tensor("training_mode", TensorProto.BOOL, [], [True])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y, mask = session.run(None, {"x": x})
    # torch's dropout formula (at::dropout: input * keep / (1 - p)) with ORT's mask, in float64
    expected = (torch.from_numpy(x) * torch.from_numpy(mask).double() / (1 - p)).numpy()
    kept = mask.astype(bool)
    print(f"ratio {helper.tensor_dtype_to_np_dtype(ratio_type)}: ORT y / x on the {kept.sum()} kept values =",
          np.unique(y[kept] / x[kept]), f", torch 1 / (1 - p) = {1 / (1 - p)!r}")
    print("    ORT  :", y[kept][:4])
    print("    torch:", expected[kept][:4])
    print("    max relative difference:", np.max(np.abs(y[kept] - expected[kept]) / np.abs(expected[kept])))
