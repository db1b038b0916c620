"""torch.compile (inductor, on the CPU) as a layer namespace: torch.nn's layers compiled, judged against eager torch.

Every layer, block and zoo model holds its torch.nn twin (`reference.adapters._torch_twin`); calling the object
you hold runs *its* torch module through `torch.compile(module, backend="inductor", fullgraph=True)` (a model is
one compiled graph), and `backward` runs autograd through the compiled graph, i.e. AOTAutograd's backward that
inductor compiled. The loss is torch.nn.CrossEntropyLoss, compiled too; SGD, Adam and StepLR are torch.optim's
(eager: the optimizer's arithmetic is not what this adapter judges), their state already in torch's slot names.

Traps handled here:
- dynamo's recompile limit (`recompile_limit`, 8 per code object): every compiled module runs through one
  wrapper code object of torch's, so every configuration (of any layer) is another cache entry of the same code,
  and past the limit dynamo marks that code eager-only: without fullgraph it then runs every module *eagerly*,
  silently, which would judge eager torch against itself. The adapter raises the limits while it compiles; if
  the code was already marked (another compile in the process hit the limit: with fullgraph=True the call raises
  "found no compiled frames", after running it eagerly), it undoes that run, resets dynamo and compiles again;
  every call is checked: the output's autograd node must be AOTAutograd's CompiledFunctionBackward (an eager run
  is retried once after a reset, then raises RuntimeError: it never passes).
- dropout in a compiled graph draws inductor's own random numbers (not eager torch's): a Dropout layer's `mask`
  is the compiled layer applied to ones with the RNG state of the forward. A compiled *model* cannot expose
  its dropouts' masks (one fused graph), so training-mode forwards of models with dropout (p > 0) raise
  NotImplementedError.
- inductor's on-disk cache (TORCHINDUCTOR_CACHE_DIR, default under the temp dir) is shared by xdist workers:
  its writes are atomic (temporary file + rename) and its C++ builds hold file locks, so workers are safe.
"""

from __future__ import annotations

import contextlib

import numpy as np

from reference.adapters import not_installed

FRAMEWORK = "torch.compile (inductor)"
EXTRA = None  # torch is a core dependency; inductor also needs a C++ compiler (g++ or clang++) on the CPU
MAX_EXAMPLES = 3  # each new configuration compiles graphs (C++ by g++), seconds each
RECOMPILE_LIMIT = 100_000  # cache entries per code object while the adapter compiles (dynamo's default: 8)

try:
    import torch
    import torch._dynamo
    import torch._inductor.config

    from . import _torch_twin as T
except ImportError as error:  # pragma: no cover (torch is a core dependency)
    UNAVAILABLE = not_installed(FRAMEWORK, "torch", error)
else:
    UNAVAILABLE = None


def _missing_compiler() -> str | None:
    """Why inductor cannot build C++ here (no compiler found), or None."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # another torch layout: compilation will say so itself
        return None
    try:
        get_cpp_compiler()
    except Exception as error:  # inductor's own search failed
        return f"torch.compile's inductor backend needs a C++ compiler on the CPU: {type(error).__name__}: {error}"
    return None


if UNAVAILABLE is None:
    UNAVAILABLE = _missing_compiler()


def versions() -> dict[str, str]:
    import torch

    return {"torch": torch.__version__}


@contextlib.contextmanager
def _compiling():
    """dynamo's recompile limits raised (see the module docstring) for the calls the adapter makes; inductor's
    parallel compilation at most torch's thread count (under xdist, the worker's share of the cores)."""
    config = torch._dynamo.config
    names = [next(name for name in pair if hasattr(config, name))  # torch >= 2.7's names, or the older ones
             for pair in (("recompile_limit", "cache_size_limit"),
                          ("accumulated_recompile_limit", "accumulated_cache_size_limit"))]
    threads = min(torch._inductor.config.compile_threads, torch.get_num_threads())  # the process's share of cores
    with config.patch({name: max(getattr(config, name), RECOMPILE_LIMIT) for name in names}), \
            torch._inductor.config.patch(compile_threads=max(1, threads)):
        yield


def _compiled(module: torch.nn.Module):
    """torch.compile with inductor, the whole module as one graph (a graph break raises), static shapes: each
    input shape its own graph, so that a verdict does not depend on the shapes earlier checks compiled (dynamo
    would otherwise switch a layer class to dynamic shapes after its first shape change) and reproduces alone."""
    return torch.compile(module, backend="inductor", fullgraph=True, dynamic=False)


@contextlib.contextmanager
def _capturing(what: str):
    """A graph dynamo cannot capture whole (a graph break under fullgraph=True, e.g. a Python float of a tensor)
    is something torch.compile does not do: NotImplementedError naming dynamo's reason."""
    try:
        yield
    except (torch._dynamo.exc.Unsupported, torch._dynamo.exc.UserError) as error:
        reason = " ".join(str(error).strip().splitlines()[0].split())[:300]
        raise NotImplementedError(f"torch.compile(fullgraph=True) cannot capture {what} as one graph: "
                                  f"{type(error).__name__}: {reason}") from error


def _call(module: torch.nn.Module, compiled, *args):
    """compiled(*args), checked to have run compiled code (`ran_compiled`). Where it ran eagerly because an
    earlier compile in this process hit the recompile limit and dynamo marked torch's shared wrapper code
    eager-only (torch 2.14 with fullgraph=True then raises "found no compiled frames" after the eager run;
    older versions run eagerly silently), the eager run's effects (running statistics, RNG) are undone, dynamo
    is reset and the call compiled again; RuntimeError if it still runs eagerly."""
    rng, buffers = torch.get_rng_state(), [buffer.detach().clone() for buffer in module.buffers()]
    for attempt in range(2):
        try:
            out = compiled(*args)
        except RuntimeError as error:
            if "found no compiled frames" not in str(error):
                raise
            out = None
        if out is not None and ran_compiled(out[0] if isinstance(out, tuple) else out, args[0]):
            return out
        if attempt == 0:
            torch.set_rng_state(rng)
            with torch.no_grad():
                for buffer, saved in zip(module.buffers(), buffers, strict=True):
                    buffer.copy_(saved)
            torch._dynamo.reset()
    raise RuntimeError(f"{type(module).__name__}: torch.compile ran it eagerly (its output's autograd node is not "
                       "AOTAutograd's CompiledFunctionBackward); the check would judge eager torch against itself")


def ran_compiled(out: torch.Tensor, x: torch.Tensor) -> bool:
    """Whether `out` came from a compiled graph: its autograd node is AOTAutograd's compiled function (an output
    that is the input or a view of it, as Identity's and Flatten's, computes nothing to compile)."""
    if not out.requires_grad or out is x or out._base is x:
        return True
    return type(out.grad_fn).__name__ == "CompiledFunctionBackward"


if UNAVAILABLE is None:

    class Module(T.TwinModule):
        """A layer, block or model run by torch.compile: forward through the compiled module, backward through
        autograd of the compiled graph (parameter gradients accumulate in the torch parameters' .grad)."""

        _compiled = None
        _last = None  # (input tensor, output) of the last forward

        def forward(self, x):
            x_t = T.to_tensor(x).requires_grad_(True)
            training_dropouts = [n for n in T.dropouts(self.torch) if n] if self.training else []
            if training_dropouts:
                raise NotImplementedError(
                    f"torch.compile: a compiled model's dropouts ({', '.join(training_dropouts)}) draw inductor's "
                    "random numbers inside one fused graph, so their masks cannot be read back to drive torch's "
                    "dropout (a compiled Dropout layer alone exposes its mask)")
            if self._compiled is None:
                self._compiled = _compiled(self.torch)
            rng = torch.get_rng_state()
            with torch.enable_grad(), _compiling(), _capturing(self._described()):  # also inside a torch.autograd
                out = _call(self.torch, self._compiled, x_t)  # Function's forward (gradcheck), where grad is off
            self._last = (x_t, out)
            self._after_forward(x_t, rng)
            return T.to_numpy(out)

        def _after_forward(self, x_t, rng) -> None:
            """Hook for layers that record what the forward drew (dropout)."""

        def _described(self) -> str:
            mode = "training" if self.training else "eval"
            return f"{type(self).__name__} in {mode} mode ({self.torch.extra_repr() or 'no arguments'})"

        def backward(self, grad_out):
            if self._last is None:
                raise RuntimeError(f"{type(self).__name__}.backward called before forward")
            x_t, out = self._last
            out = out[0] if isinstance(out, tuple) else out  # a pool's indices have no gradient
            self._last = None
            if out.requires_grad:
                with torch.enable_grad():
                    torch.autograd.backward(out, T.to_tensor(grad_out))
            return T.to_numpy(x_t.grad) if x_t.grad is not None else np.zeros(x_t.shape, x_t.numpy().dtype)

    class _CompiledDropout:
        """The mask the compiled layer applied: the compiled layer applied to ones with the forward's RNG state
        (inductor's random numbers depend on the generator state and the shape only)."""

        def _after_forward(self, x_t, rng) -> None:
            if not self.training:
                self._mask = None
                return
            after = torch.get_rng_state()
            torch.set_rng_state(rng)
            try:
                with torch.enable_grad(), _compiling():
                    ones = _call(self.torch, self._compiled, torch.ones_like(x_t).requires_grad_(True))
            finally:
                torch.set_rng_state(after)
            mask = T.to_numpy(ones)
            # torch's Dropout2d drops channels of (N, C, H, W): the protocol's mask is (N, C, 1, 1)
            self._mask = mask[:, :, :1, :1] if self.torch_name == "Dropout2d" and mask.ndim == 4 else mask

    globals().update(T.layer_classes(Module, Dropout=_CompiledDropout, Dropout2d=_CompiledDropout))

    class CrossEntropyLoss:
        """torch.nn.CrossEntropyLoss (torch's arguments), compiled; backward through the compiled graph."""

        def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                     label_smoothing=0.0):
            weight = None if weight is None else T.to_tensor(weight)
            self.torch = torch.nn.CrossEntropyLoss(weight, size_average, ignore_index, reduce, reduction,
                                                   label_smoothing)
            self._compiled, self._last = _compiled(self.torch), None

        def __call__(self, logits, targets):
            logits_t = T.to_tensor(logits).requires_grad_(True)
            targets_t = T.to_tensor(targets)
            if targets_t.is_floating_point():  # class probabilities: in the logits' dtype, as torch requires
                targets_t = targets_t.to(logits_t.dtype)
            self.torch.to(logits_t.dtype)  # the class weight in the logits' dtype, as torch requires
            with torch.enable_grad(), _compiling(), _capturing(f"CrossEntropyLoss({self.torch.extra_repr()})"):
                loss = _call(self.torch, self._compiled, logits_t, targets_t)
            self._last = (logits_t, loss)
            return T.to_numpy(loss)

        forward = __call__

        def backward(self, grad_loss=1.0):
            logits_t, loss = self._last
            with torch.enable_grad():
                loss.backward(torch.as_tensor(np.asarray(grad_loss), dtype=loss.dtype))
            return T.to_numpy(logits_t.grad)

    class _Optimizer:
        """A torch.optim optimizer over objects with `.data` / `.grad`: the namespace's own parameters are stepped
        as their torch tensors; other objects (NumPy arrays) through tensors sharing their memory."""

        torch_class = None

        def __init__(self, params, *args, **kwargs):
            self.params = list(params)
            self._tensors = [p.tensor if isinstance(p, T.TwinParameter) else torch.from_numpy(p.data)
                             for p in self.params]
            self.torch = self.torch_class(self._tensors, *args, **kwargs)

        def _bind(self) -> None:
            """Tensors over the current arrays (an assignment to `.data` replaces the array) and their grads."""
            for param, tensor in zip(self.params, self._tensors, strict=True):
                if isinstance(param, T.TwinParameter):
                    continue
                if tensor.data_ptr() != param.data.ctypes.data or tuple(tensor.shape) != param.data.shape:
                    tensor.data = torch.from_numpy(param.data)
                tensor.grad = None if param.grad is None else T.to_tensor(param.grad)

        def step(self) -> None:
            self._bind()
            self.torch.step()

        def zero_grad(self) -> None:
            for param in self.params:
                param.grad = None
            self.torch.zero_grad(set_to_none=True)

        @property
        def lr(self) -> float:
            return self.torch.param_groups[0]["lr"]

        @lr.setter
        def lr(self, value: float) -> None:
            for group in self.torch.param_groups:
                group["lr"] = value

        @property
        def state(self) -> dict[int, dict]:
            """torch's state by parameter position, tensors as NumPy copies (slot names are torch's)."""
            return {i: {key: T.to_numpy(value) if torch.is_tensor(value) else value
                        for key, value in self.torch.state[tensor].items()}
                    for i, tensor in enumerate(self._tensors) if tensor in self.torch.state}

    class SGD(_Optimizer):
        """torch.optim.SGD (torch's arguments)."""

        torch_class = torch.optim.SGD

    class Adam(_Optimizer):
        """torch.optim.Adam (torch's arguments)."""

        torch_class = torch.optim.Adam

    class StepLR:
        """torch.optim.lr_scheduler.StepLR over the namespace's optimizer (torch's arguments)."""

        def __init__(self, optimizer, *args, **kwargs):
            self.optimizer = optimizer
            self.torch = torch.optim.lr_scheduler.StepLR(optimizer.torch, *args, **kwargs)

        def step(self) -> None:
            self.torch.step()

else:  # pragma: no cover (no C++ compiler: every class refuses, naming why)
    with contextlib.suppress(ImportError):  # without torch nothing of the package's conformance runs anyway
        from ._torch_twin import unavailable_classes

        globals().update(unavailable_classes(UNAVAILABLE, "CrossEntropyLoss", "SGD", "Adam", "StepLR"))
