"""ONNX Runtime as a layer namespace, forward only: torch.nn's layers exported to ONNX and run by ORT on the CPU.

Every layer, block and zoo model holds its torch.nn twin (`reference.adapters._torch_twin`); calling the object you
hold exports *its* torch module with torch's ONNX exporter and runs the graph in an `onnxruntime.InferenceSession`
on the CPUExecutionProvider (a model is one graph). The session is cached by input shape and dtype, mode, the
modules' configuration and a digest of the state, so a change of any of them exports again. `backward` raises
NotImplementedError: ORT runs inference graphs. There are no optimizers.

Exporter: the TorchScript one (`torch.onnx.export(..., dynamo=False)`), because it exports training mode as
ONNX defines it (`training=TrainingMode.TRAINING`: BatchNormalization with training_mode=1 and its updated running
statistics, Dropout with training_mode and its mask output), which the dynamo exporter does not (it exports a
training-mode batch norm and dropout as their inference forms, silently), and it exports a layer in ~0.03 s
against ~0.6 s. It is deprecated in torch >= 2.9; it exports in torch 2.11 and 2.14.

Training mode: batch norm runs ONNX's training-mode BatchNormalization (ORT computes the batch statistics and the
new running statistics, which the adapter writes back into the module's buffers); dropout runs ONNX's Dropout
with training_mode, whose mask output is the mask the layer exposes. Where the exporter has no training form
(Dropout2d's feature dropout) the forward raises NotImplementedError with the exporter's reason.

Translations: unbatched (C, H, W) input to Conv2d and the 2-D pools runs as (1, C, H, W) (ONNX's ops have a batch
axis only), unbatched (C,) logits to CrossEntropyLoss as (1, C); ONNX's boolean dropout mask becomes torch's
multiplier keep / (1 - p); ORT's new running statistics go into the module's buffers, and num_batches_tracked
(no ONNX slot) counts the training forwards as torch's does.
Refused (NotImplementedError): what ONNX lacks (AvgPool2d's divisor_override, Dropout's p = 1 in training,
CrossEntropyLoss's label_smoothing and class-probability targets), what the exporter cannot export (adaptive
pools to sizes that do not divide the input, Dropout2d in training), kernels ORT's CPU provider lacks (float64
Conv, AveragePool, GlobalAveragePool, named in the reason).
"""

from __future__ import annotations

import copy
import hashlib
import io
import warnings
from collections import OrderedDict

import numpy as np

from reference.adapters import not_installed

FRAMEWORK = "ONNX Runtime"
EXTRA = "onnx"  # pip install "reference[onnx]": onnxruntime, and onnx (the graph is edited to expose training outputs)
MAX_EXAMPLES = 25  # the default depth: an export (~0.03 s) and a session per configuration; a full run ~1 min
OPSET = 17  # BatchNormalization's training_mode needs >= 14, Dropout's >= 12
NO_GRADIENTS = "ONNX Runtime runs inference graphs: no gradients"
SESSIONS_KEPT = 2  # sessions cached per module (the most recent ones)

try:
    import onnx
    import onnx.numpy_helper
    import onnxruntime
    import torch
    from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

    from . import _torch_twin as T
except ImportError as error:
    UNAVAILABLE = not_installed(FRAMEWORK, EXTRA, error)
else:
    UNAVAILABLE = None


def versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__, "torch": torch.__version__}


def _short(error: BaseException) -> str:
    """The first paragraph of an error message on one line, without the exporter's per-input "[Caused by ..."."""
    return " ".join(str(error).strip().split("\n\n")[0].split(" [Caused by")[0].split())[:400]


def _state_digest(module) -> str:
    """A digest of a torch module's configuration (its repr and modes) and every parameter and buffer."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(module).encode())
    digest.update(bytes(m.training for m in module.modules()))
    for key, value in module.state_dict().items():
        array = np.ascontiguousarray(value.detach().numpy())
        digest.update(f"{key}:{array.dtype}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _session(model: onnx.ModelProto):
    """An InferenceSession on the CPU provider; a kernel ORT lacks (e.g. Conv in float64) is NotImplementedError."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the worker's share of the cores, as torch's
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except OrtNotImplemented as error:
        raise NotImplementedError(f"ONNX Runtime's CPUExecutionProvider: {_short(error)}") from error


def _export(module, inputs: tuple, input_names: list[str], output_names: list[str], training: bool):
    """The ONNX model of `module` traced on `inputs` by torch's TorchScript exporter (from a copy: tracing runs the
    forward, and a training one would update the module's running statistics); what it cannot export is
    NotImplementedError with its reason."""
    twin = copy.deepcopy(module)
    stream = io.BytesIO()
    mode = torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.EVAL
    try:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(twin, inputs, stream, dynamo=False, opset_version=OPSET, input_names=input_names,
                              output_names=output_names, training=mode, do_constant_folding=not training,
                              verbose=False)
    except torch.onnx.errors.OnnxExporterError as error:
        raise NotImplementedError(f"torch.onnx.export (TorchScript exporter, opset {OPSET}): {_short(error)}") \
            from error
    return onnx.load_from_string(stream.getvalue())


class _Graph:
    """An exported graph and its session: the inputs it takes, how many outputs are the module's, and the training
    outputs added to it ((output name, kind, target): "buffer" -> a state key, "mask" -> a module path)."""

    def __init__(self, model, input_names, outputs: int, extras: list[tuple[str, str, str]]):
        for name, _, _ in extras:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        self.session, self.input_names, self.outputs, self.extras = _session(model), input_names, outputs, extras

    def run(self, *arrays) -> tuple[list, dict]:
        values = self.session.run(None, dict(zip(self.input_names, arrays, strict=True)))
        return values[: self.outputs], {extra: value for extra, value in zip(self.extras, values[self.outputs:],
                                                                             strict=True)}


def _training_outputs(model, state: dict) -> list[tuple[str, str, str]]:
    """The initializers set to the module's state (the exporter's traced training forward had already advanced the
    running statistics it stores), and the outputs to add: each training-mode BatchNormalization's new running
    mean and variance, each training-mode Dropout's mask."""
    for initializer in model.graph.initializer:
        if initializer.name in state and tuple(initializer.dims) == state[initializer.name].shape:
            initializer.CopyFrom(onnx.numpy_helper.from_array(state[initializer.name], initializer.name))
    extras = []
    for node in model.graph.node:
        if node.op_type == "BatchNormalization" and len(node.output) == 3 and node.input[3] in state:
            extras += [(node.output[1], "buffer", node.input[3]), (node.output[2], "buffer", node.input[4])]
        elif node.op_type == "Dropout" and len(node.output) == 2:
            scopes = node.name.strip("/").split("/")[:-1]  # "/classifier/classifier.3/Dropout" -> "classifier.3"
            extras.append((node.output[1], "mask", scopes[-1] if scopes else ""))
    return extras


if UNAVAILABLE is None:

    class Module(T.TwinModule):
        """A layer, block or model run by ONNX Runtime: exported from its torch twin, forward only."""

        _graphs = None

        def forward(self, x):
            x = np.asarray(x, order="C")  # (ascontiguousarray would make a 0-d input 1-d)
            graph = self._graph(x)
            outputs, extras = graph.run(x)
            if self.training:
                self._write_back(extras, x.dtype)
            return tuple(outputs) if len(outputs) == 2 else outputs[0]

        def backward(self, grad_out):
            raise NotImplementedError(NO_GRADIENTS)

        def _graph(self, x) -> _Graph:
            """The cached graph for this input, configuration and state, or a new export."""
            graphs = self.__dict__.setdefault("_graphs", OrderedDict())
            key = (x.shape, x.dtype.str, _state_digest(self.torch))
            if key not in graphs:
                indices = bool(getattr(self.torch, "return_indices", False))  # a pool's (output, indices)
                names = ["output", "indices"] if indices else ["output"]
                model = _export(self.torch, (T.to_tensor(x),), ["input"], names, self.training)
                state = {k: v.detach().numpy() for k, v in self.torch.state_dict().items()}
                extras = _training_outputs(model, state) if self.training else []
                graphs[key] = _Graph(model, ["input"], len(names), extras)
                while len(graphs) > SESSIONS_KEPT:
                    graphs.popitem(last=False)
            graphs.move_to_end(key)
            return graphs[key]

        def _write_back(self, extras: dict, dtype) -> None:
            """ORT's new running statistics into the modules' buffers, its dropout masks into the layers."""
            modules = dict(self.named_modules())
            dropouts_seen = set()
            for (_, kind, target), value in extras.items():
                if kind == "buffer":
                    buffer = self.torch.get_buffer(target)
                    buffer.copy_(torch.from_numpy(np.asarray(value)))
                    if target.endswith("running_mean"):  # torch's counter, which ONNX has no slot for
                        counter = target[: -len("running_mean")] + "num_batches_tracked"
                        if counter in dict(self.torch.named_buffers()):
                            self.torch.get_buffer(counter).add_(1)
                else:
                    layer = modules.get(target)
                    if layer is None or not T.is_dropout(layer.torch):
                        raise NotImplementedError(f"ONNX Dropout node of scope {target!r}: no dropout module of "
                                                  "that name to expose its mask")
                    # ONNX's mask is boolean (kept); torch's multiplier is keep / (1 - p)
                    p = layer.torch.p
                    keep = np.asarray(value, dtype=bool)
                    layer._mask = (keep / (1.0 - p) if p < 1 else np.zeros(keep.shape)).astype(dtype)
                    dropouts_seen.add(target)
            for name, layer in modules.items():
                if T.is_dropout(layer.torch) and name not in dropouts_seen:
                    layer._mask = None

    class _OrtDropout:
        """Dropout and Dropout2d: `mask` is the mask output of ONNX's training-mode Dropout node."""

        def forward(self, x):
            if self.training and self.p >= 1:
                raise NotImplementedError(f"{type(self).__name__}(p={self.p}) in training mode: ONNX's Dropout ratio "
                                          "must be in [0, 1) (ONNX Runtime fails on 1)")
            return super().forward(x)

    class _OrtAvgPool2d:
        """AvgPool2d: ONNX's AveragePool has no divisor_override (torch's exporter drops it silently)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if self.torch.divisor_override is not None:
                raise NotImplementedError(f"AvgPool2d(divisor_override={self.torch.divisor_override}): ONNX's "
                                          "AveragePool has no divisor_override (torch's exporter drops it silently)")

    class _Batched:
        """Conv2d and the 2-D pools: torch's unbatched (C, H, W) input runs as (1, C, H, W), as ONNX's Conv and
        pooling ops take a batch axis only. torch's exporter does not add it for pools (it exports an invalid graph,
        or AdaptiveAvgPool2d(1) as a GlobalAveragePool over the last axis: examples/frameworks/
        onnxruntime_unbatched_pooling.py) and aborts the process on a circular-padded unbatched Conv2d
        (examples/frameworks/onnxruntime_unbatched_circular_conv.py)."""

        def forward(self, x):
            x = np.asarray(x)
            if x.ndim != 3:
                return super().forward(x)
            out = super().forward(x[None])  # (C, H, W) -> (1, C, H, W), and back below
            return tuple(o[0] for o in out) if isinstance(out, tuple) else out[0]

    class _OrtAvgPool2d(_Batched, _OrtAvgPool2d):
        pass

    globals().update(T.layer_classes(Module, Dropout=_OrtDropout, Dropout2d=_OrtDropout, AvgPool2d=_OrtAvgPool2d,
                                     MaxPool2d=_Batched, AdaptiveAvgPool2d=_Batched, AdaptiveMaxPool2d=_Batched,
                                     Conv2d=_Batched))

    class CrossEntropyLoss:
        """torch.nn.CrossEntropyLoss (torch's arguments) exported to ONNX (SoftmaxCrossEntropyLoss), run by ORT;
        no backward."""

        def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                     label_smoothing=0.0):
            weight = None if weight is None else T.to_tensor(weight)
            self.torch = torch.nn.CrossEntropyLoss(weight, size_average, ignore_index, reduce, reduction,
                                                   label_smoothing)
            if label_smoothing != 0:
                raise NotImplementedError(f"CrossEntropyLoss(label_smoothing={label_smoothing}): ONNX's "
                                          "SoftmaxCrossEntropyLoss has no label smoothing (the exporter refuses it)")
            self._graphs = OrderedDict()

        def __call__(self, logits, targets):
            logits, targets = np.asarray(logits, order="C"), np.asarray(targets, order="C")
            if targets.dtype.kind == "f":
                raise NotImplementedError("CrossEntropyLoss with class-probability targets: ONNX's "
                                          "SoftmaxCrossEntropyLoss takes class indices only (torch's exporter writes "
                                          "an invalid graph for them)")
            if logits.ndim == 1:  # torch's unbatched (C,) logits and () target run as a batch of one (the exporter
                loss = self(logits[None], targets[None])  # writes an invalid Reshape for them)
                return loss[0] if self.torch.reduction == "none" else loss
            self.torch.to(T.TORCH_DTYPES[logits.dtype])  # the class weight in the logits' dtype, as torch requires
            key = (logits.shape, logits.dtype.str, targets.shape, targets.dtype.str, _state_digest(self.torch))
            if key not in self._graphs:
                model = _export(self.torch, (T.to_tensor(logits), T.to_tensor(targets)), ["logits", "targets"],
                                ["loss"], training=False)
                self._graphs[key] = _Graph(model, ["logits", "targets"], 1, [])
                while len(self._graphs) > SESSIONS_KEPT:
                    self._graphs.popitem(last=False)
            (loss,), _ = self._graphs[key].run(logits, targets)
            return np.asarray(loss)

        forward = __call__

        def backward(self, grad_loss=1.0):
            raise NotImplementedError(NO_GRADIENTS)

else:
    import contextlib

    with contextlib.suppress(ImportError):  # torch is a core dependency: the stand-ins need only it
        from ._torch_twin import unavailable_classes

        globals().update(unavailable_classes(UNAVAILABLE, "CrossEntropyLoss"))
