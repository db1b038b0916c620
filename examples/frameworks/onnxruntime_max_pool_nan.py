"""ONNX Runtime vs torch: MaxPool over a window that holds a NaN.

torch's max-pool propagates NaN (a window's maximum is NaN when it holds one, as torch defines it); ONNX Runtime's
CPU MaxPool depends on where the NaN sits: below, the window [1, NaN, 0.5, 0.25] gives 1 (NaN skipped) while
[3, -2, NaN, NaN] gives NaN. ONNX's MaxPool specification does not say what NaN does. The graph is a plain ONNX
MaxPool node (no exporter involved).

    python examples/frameworks/onnxruntime_max_pool_nan.py
"""

import numpy as np
import onnxruntime
import torch
from onnx import TensorProto, helper

x = np.array([[[[1.0, np.nan, 3.0, -2.0], [0.5, 0.25, np.nan, np.nan]]]], dtype=np.float32)  # (1, 1, 2, 4)
node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
graph = helper.make_graph([node], "max_pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
(ort_y,) = session.run(None, {"x": x})
torch_y = torch.nn.functional.max_pool2d(torch.from_numpy(x), 2).numpy()

print(f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}")
print("windows:", [x[0, 0, :, 0:2].flatten().tolist(), x[0, 0, :, 2:4].flatten().tolist()])
print("torch       :", torch_y.flatten().tolist())
print("ONNX Runtime:", ort_y.flatten().tolist())
