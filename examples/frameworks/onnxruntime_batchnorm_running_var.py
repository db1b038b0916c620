"""ONNX Runtime vs torch: a training-mode batch norm's new running variance.

ONNX's BatchNormalization with training_mode=1 updates running_var with the batch's population variance
(ReduceVar over N*H*W values, divided by N*H*W), torch's BatchNorm2d with the unbiased one (divided by
N*H*W - 1); the output and running_mean agree. The graph below is a plain ONNX node (no exporter involved).

    python examples/frameworks/onnxruntime_batchnorm_running_var.py
"""

import numpy as np
import onnxruntime
import torch
from onnx import TensorProto, helper

x = np.random.default_rng(0).standard_normal((2, 3, 2, 2)).astype(np.float32)
channels, momentum = x.shape[1], 0.1  # torch's momentum; ONNX's is 1 - 0.1
mean0, var0 = np.zeros(channels, np.float32), np.ones(channels, np.float32)

node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y", "new_mean", "new_var"],
                        epsilon=1e-5, momentum=1 - momentum, training_mode=1)
graph = helper.make_graph(
    [node], "batch_norm_training", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
    [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("y", "new_mean", "new_var")],
    [helper.make_tensor("scale", TensorProto.FLOAT, [channels], np.ones(channels)),
     helper.make_tensor("bias", TensorProto.FLOAT, [channels], np.zeros(channels)),
     helper.make_tensor("mean", TensorProto.FLOAT, [channels], mean0),
     helper.make_tensor("var", TensorProto.FLOAT, [channels], var0)])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
y, new_mean, new_var = session.run(None, {"x": x})

bn = torch.nn.BatchNorm2d(channels, momentum=momentum).train()
out = bn(torch.from_numpy(x)).detach().numpy()

n = x.size // channels
print(f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}; {n} values per channel")
print("output         max |ORT - torch| =", np.abs(y - out).max())
print("running_mean   max |ORT - torch| =", np.abs(new_mean - bn.running_mean.numpy()).max())
print("running_var    ORT   =", new_var)
print("running_var    torch =", bn.running_var.numpy())
print("running_var    max |ORT - torch| =", np.abs(new_var - bn.running_var.numpy()).max())
population = x.var(axis=(0, 2, 3))
print("ORT's update with the population variance: (1 - m) * 1 + m * var  =", (1 - momentum) + momentum * population)
print("torch's, unbiased: (1 - m) * 1 + m * var * n / (n - 1)          =",
      (1 - momentum) + momentum * population * n / (n - 1))
