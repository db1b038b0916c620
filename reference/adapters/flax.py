"""JAX/Flax as a layer namespace: Flax's own layers, JAX's autodiff and optax's optimizers, judged against torch.

Every class is torch.nn's (constructor arguments, state_dict keys and shapes, NCHW NumPy arrays in and out), but
the math is Flax's: `nnx.Conv`, `nnx.Linear`, `nnx.BatchNorm`, `nnx.Dropout`, `nnx.max_pool` / `nnx.avg_pool`,
`nnx.relu` / `relu6` / `hard_tanh`, blocks composed of them as Flax code writes them (`nnx.Sequential`, small
`nnx.Module`s), the loss optax's softmax cross-entropy (and `optax.smooth_labels`), the optimizers optax's `sgd` /
`adam` (with `add_decayed_weights`, the learning rate in `inject_hyperparams`), StepLR optax's staircase
`exponential_decay`. Gradients come from JAX: a module's forward runs its whole Flax graph under `jax.vjp`
(containers and blocks are differentiated as one composition), its backward applies that vjp.

Design choices:
- Flax NNX, not linen: NNX modules hold their parameters as mutable `nnx.Variable`s, as torch.nn modules do, so a
  torch parameter or buffer is one NNX variable read or written through its layout translation (state_dict and
  load_state_dict map one-to-one), and Flax recommends NNX for new code. The differentiated function is NNX's
  functional form: `nnx.split` the module into parameters and the rest, `nnx.merge` them inside, and return the
  updated non-parameter state (batch statistics, the dropout key count and mask) to `nnx.update` the module.
- float64: JAX computes in float32 unless x64 is on; importing this module runs
  `jax.config.update("jax_enable_x64", True)` (process-wide for JAX), so that `to(np.float64)` computes in float64.
  JAX runs on the CPU: `jax_platforms` is set to "cpu" when JAX has not started a backend yet.
- Speed (hypothesis builds fresh layers of fresh shapes): a module's graph runs under one `jax.jit` with the NNX
  graph definition static, so each new structure and shape compiles once and models and trajectories reuse it
  (so do the loss and each parameter's optax update); layers are built abstractly (`nnx.eval_shape`) and get
  Flax's own random initial values only if used before a state is loaded (compiling jax.random for every new
  shape costs ~0.3 s a layer, and the engine always loads a state); NumPy arrays enter JAX by `jax.device_put`.
- Translations (each one line, where it stands): NCHW <-> NHWC around each convolution and pool (transposes,
  exact), OIHW <-> HWIO kernels, Linear (out, in) <-> (in, out), BatchNorm momentum m <-> 1 - m with its feature
  axis 1 (no transpose), padding forms, groups -> feature_group_count, dilation -> kernel_dilation, adaptive pools
  whose output size divides the input as plain pools, the dropout mask (Flax's dropout of ones with the key of
  the forward), optax's state -> torch's slot names, torch's reduction -> mean / sum of optax's per-sample losses.
- Dropout keys: every dropout layer's NNX key stream starts at DROPOUT_SEED (0), so checks draw the same masks in
  every run (the engine's examples and xfails stay reproducible); two dropout layers of one model that see inputs
  of one shape therefore drop the same units at each step.
- torch's `num_batches_tracked` (bookkeeping only: nothing here computes with it, since momentum=None is refused)
  is an NNX variable of the batch-norm wrapper that counts training-mode forwards, so state_dicts keep torch's keys
  and values.
- `nnx.BatchNorm(use_fast_variance=False)`: the batch variance as mean((x - mean)^2), torch's definition, rather
  than Flax's default E[x^2] - E[x]^2 (a choice between two of Flax's own algorithms, not math of ours).

Known differences from torch (reference/adapters/xfails/flax.txt; reproductions in examples/frameworks/flax_*.py):
Flax's BatchNorm updates running_var with the biased batch variance (torch: unbiased); nnx.avg_pool with
count_include_pad=False returns float64 for float32 input under x64; JAX's relu has gradient 0 at NaN (torch
passes it) and hard_tanh gradient 1 at its bounds (torch 0); max_pool sends a NaN window's gradient past the NaN
(torch: to the NaN); Flax's dropout turns dropped NaN / inf into 0 (torch: NaN); Flax initialises Conv / Linear
kernels from lecun_normal and biases with zeros (torch: U(+-1/sqrt(fan_in)) for both).

What Flax lacks raises NotImplementedError naming it: padding_mode 'replicate' (and 'reflect' / 'circular' with
other amounts than Flax's 'same' padding), pooling's dilation, ceil_mode, divisor_override and return_indices,
adaptive pools whose output size does not divide the input size, BatchNorm momentum=None, Hardtanh ranges other
than (-1, 1) and (0, 6), in-place activations, CrossEntropyLoss weight and ignore_index (when it occurs), SGD
dampening (with momentum), Adam amsgrad (optax's differs) / maximize / decoupled weight decay, and torch's
implementation flags (foreach, fused, ...).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Mapping
from functools import partial

import numpy as np

from reference.adapters import not_installed
from reference.adapters._blocks import basic_block_layers, bottleneck_layers

FRAMEWORK = "Flax"
EXTRA = "jax"  # pip install "reference[jax]": jax, flax and optax
MAX_EXAMPLES = 5  # hypothesis examples per check: each fresh configuration compiles its Flax graph (~0.3 s)

try:
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx
except ImportError as error:  # the namespace still imports; every class refuses with the reason
    UNAVAILABLE = not_installed(FRAMEWORK, EXTRA, error)
else:
    UNAVAILABLE = None
    try:
        jax.config.update("jax_platforms", "cpu")  # JAX on the CPU (no effect once a backend has started)
    except Exception:  # noqa: BLE001  (a backend already started: keep it)
        pass
    jax.config.update("jax_enable_x64", True)  # float64 arrays stay float64 (the module computes in its dtype)


def versions() -> dict[str, str]:
    """{package: version} of what the adapter runs on."""
    from importlib import metadata

    found = {}
    for package in ("jax", "jaxlib", "flax", "optax"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def _require_framework() -> None:
    if UNAVAILABLE is not None:
        raise NotImplementedError(UNAVAILABLE)


_NnxModule = object if UNAVAILABLE is not None else nnx.Module
_Variable = object if UNAVAILABLE is not None else nnx.Variable
_SEEDS = itertools.count()  # each layer's (unloaded) Flax initialisation gets its own seed
DROPOUT_SEED = 0  # every dropout layer's key stream starts here: reproducible masks, whatever was built before
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class _Bookkeeping(_Variable):
    """torch's num_batches_tracked, kept by the adapter's batch-norm wrapper."""


class _Mask(_Variable):
    """The multiplier of a dropout wrapper's last forward (an output: never read by the forward)."""


_NO_MASK = None if UNAVAILABLE is not None else np.zeros((), dtype=np.float32)


def _pair(name: str, value) -> tuple[int, int]:
    """torch's int-or-pair arguments as a pair of ints."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _refuse(owner: str, **options) -> None:
    """torch options the adapter cannot translate: each must keep its default (None or False)."""
    for name, value in options.items():
        if value not in (None, False):
            raise NotImplementedError(f"{owner}: {name}={value!r} has no Flax/optax counterpart here")


def _check_device(owner: str, device) -> None:
    if device is not None and str(device) != "cpu":
        raise NotImplementedError(f"{owner}: device={device!r}: the adapter runs JAX on the CPU")


def _numpy_dtype(dtype) -> np.dtype:
    """float32 / float64 from a NumPy or torch dtype (torch.float64 -> float64)."""
    if type(dtype).__module__.startswith("torch"):
        name = str(dtype).replace("torch.", "")
        return np.dtype({"float": "float32", "double": "float64"}.get(name, name))
    return np.dtype(dtype)


def _identity(array):
    return array


def _jax(array, dtype=None):
    """A JAX array from a NumPy array or number (jax.device_put: jnp.asarray compiles a copy for every new shape)."""
    return jax.device_put(np.array(array, dtype=dtype, order="C"))


def _numpy(array) -> np.ndarray:
    """A writable NumPy copy of a JAX array (np.asarray of one is a read-only view)."""
    return np.array(np.asarray(array), copy=True)


# -- layouts: each translation once ------------------------------------------------------------------------------

def _channels_last(x):
    return jnp.moveaxis(x, -3, -1)  # (N, C, H, W) or (C, H, W) -> channels last, as Flax's conv and pools take them


def _channels_first(y):
    return jnp.moveaxis(y, -1, -3)  # back to torch's channels-first layout


def _hwio(weight):
    return weight.transpose(2, 3, 1, 0)  # torch's conv weight (O, I, kh, kw) -> Flax's kernel (kh, kw, I, O)


def _oihw(kernel):
    return kernel.transpose(3, 2, 0, 1)  # Flax's kernel (kh, kw, I, O) -> torch's weight (O, I, kh, kw)


def _transposed(matrix):
    return matrix.T  # torch's Linear weight (out, in) <-> Flax's kernel (in, out)


def _symmetric(padding) -> tuple[tuple[int, int], ...]:
    return tuple((p, p) for p in _pair("padding", padding))  # torch's symmetric padding as Flax's (low, high) pairs


# -- the torch-facing side: parameters, buffers, modules ----------------------------------------------------------

class _Slot:
    """One torch parameter or buffer: an NNX variable (`owner.attr`) seen through its layout translation.

    `data` reads a writable copy in torch's layout and writes back in Flax's, keeping the variable's dtype (as
    load_state_dict does); `grad` is the accumulated gradient in torch's layout (None until a backward). A variable
    still abstract (see `_lazy`) is given its Flax initial value on the first read."""

    def __init__(self, owner, attr: str, to_torch=_identity, to_flax=_identity, is_parameter: bool = True,
                 initialise=None):
        self._owner, self._attr, self._to_torch, self._to_flax = owner, attr, to_torch, to_flax
        self.is_parameter, self._initialise = is_parameter, initialise
        self.grad: np.ndarray | None = None

    @property
    def variable(self):
        return getattr(self._owner, self._attr)

    @property
    def data(self) -> np.ndarray:
        if _is_abstract(self.variable) and self._initialise is not None:
            self._initialise()
        return np.array(self._to_torch(np.asarray(self.variable.get_value())), copy=True)

    @data.setter
    def data(self, value) -> None:
        self._write(np.asarray(value), self.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._to_torch(np.empty(self.variable.get_value().shape, dtype=np.bool_)).shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.variable.get_value().dtype)

    def _write(self, value: np.ndarray, dtype) -> None:
        self.variable.set_value(_jax(self._to_flax(value), dtype))

    def accumulate(self, grad: np.ndarray) -> None:
        """Add a gradient (torch's layout), as autograd accumulates into `.grad`."""
        self.grad = grad.copy() if self.grad is None else self.grad + grad

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


def _is_abstract(variable) -> bool:
    return isinstance(variable.get_value(), jax.ShapeDtypeStruct)


def _abstract_variables(layer) -> list:
    return [(path, node) for path, node in nnx.iter_graph(layer) if isinstance(node, nnx.Variable) and
            _is_abstract(node)]


def _as_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor (duck-typed: no torch import here)
        value = value.detach().cpu().numpy()
    return np.asarray(value)


@partial(jax.jit, static_argnums=0) if UNAVAILABLE is None else _identity
def _run(graphdef, params, masks, rest, x):
    """The module's Flax graph applied to x: its output and its updated non-parameter state (compiled per graph
    structure and shapes)."""
    module = nnx.merge(graphdef, params, masks, rest, copy=True)
    return module(x), nnx.state(module, nnx.Not(nnx.Param))


class Module:
    """A torch.nn-style module whose computation is an NNX module (`self.nnx`); children are adapter modules.

    forward runs the whole NNX graph of this module under jax.vjp (a container differentiates its composition as
    one function); backward applies the vjp and adds each parameter's gradient to its `.grad` in torch's layout."""

    def __init__(self):
        _require_framework()
        object.__setattr__(self, "_children", OrderedDict())
        object.__setattr__(self, "_slots", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "nnx", None)
        object.__setattr__(self, "_last", None)
        object.__setattr__(self, "_paths", None)
        object.__setattr__(self, "_pending", [])

    def __setattr__(self, name, value):
        if isinstance(value, Module):
            self._children[name] = value
        object.__setattr__(self, name, value)

    def _slot(self, name: str, owner, attr: str, to_torch=_identity, to_flax=_identity, is_parameter=True) -> None:
        self._slots[name] = _Slot(owner, attr, to_torch, to_flax, is_parameter, self._initialise)

    def _lazy(self, make):
        """The Flax layer `make(rngs)` built abstractly (nnx.eval_shape: shapes and dtypes, nothing computed). Its
        variables get their values from load_state_dict, or from Flax's own initialisers when first used unloaded:
        compiling jax.random for each new shape costs ~0.3 s a layer, and the conformance engine always loads a
        state."""
        seed = next(_SEEDS)
        layer = nnx.eval_shape(lambda: make(nnx.Rngs(seed)))
        self._pending.append((layer, make, seed))
        return layer

    def _initialise(self) -> None:
        """Give every still-abstract variable of this module (and its children) its Flax initial value."""
        for module in self.modules():
            for layer, make, seed in module._pending:
                abstract = _abstract_variables(layer)
                if abstract:
                    initial = dict(nnx.iter_graph(make(nnx.Rngs(seed))))
                    for path, variable in abstract:
                        variable.set_value(_jax(initial[path].get_value(), variable.get_value().dtype))
            module._pending.clear()

    # -- calling ---------------------------------------------------------------------------------------------
    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        x = np.asarray(x)
        if x.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{type(self).__name__}: expected a float32 or float64 array, got {x.dtype}")
        self._initialise()
        graphdef, params, masks, rest = nnx.split(self.nnx, nnx.Param, _Mask, ...)
        masks = jax.tree.map(lambda _: _NO_MASK, masks)  # outputs only: a fixed shape keeps one compilation
        out, vjp, updated = jax.vjp(lambda p, inputs: _run(graphdef, p, masks, rest, inputs), params,
                                    _jax(x), has_aux=True)
        nnx.update(self.nnx, updated)
        self._last = (vjp, out.shape, out.dtype)
        return _numpy(out)

    def backward(self, grad_out):
        if self._last is None:
            raise RuntimeError(f"{type(self).__name__}.backward before forward")
        vjp, shape, dtype = self._last
        grad_out = np.asarray(grad_out)
        if grad_out.shape != shape:
            raise ValueError(f"{type(self).__name__}.backward: grad_out of shape {grad_out.shape}, expected {shape}")
        grad_params, grad_x = vjp(_jax(grad_out, dtype))
        slots = self._slots_by_path()
        for path, value in nnx.to_flat_state(grad_params):
            slot = slots[path]
            slot.accumulate(np.array(slot._to_torch(np.asarray(value.get_value())), copy=True))
        return _numpy(grad_x)

    def _slots_by_path(self) -> dict:
        """{path in this module's NNX graph: parameter slot}, found once by identity of the NNX variables."""
        if self._paths is None:
            paths = {id(node): path for path, node in nnx.iter_graph(self.nnx) if isinstance(node, nnx.Variable)}
            self._paths = {paths[id(slot.variable)]: slot for _, slot in self._parameter_slots()}
        return self._paths

    # -- traversal -------------------------------------------------------------------------------------------
    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def children(self):
        yield from self._children.values()

    def _entries(self):
        """(key, slot) of every parameter and buffer, in torch's state_dict order (each module's parameters, then
        its buffers, then its children)."""
        for prefix, module in self.named_modules():
            ordered = sorted(module._slots.items(), key=lambda item: not item[1].is_parameter)
            for name, slot in ordered:
                yield (f"{prefix}.{name}" if prefix else name), slot

    def _parameter_slots(self):
        return [(key, slot) for key, slot in self._entries() if slot.is_parameter]

    def named_parameters(self):
        yield from self._parameter_slots()

    def parameters(self):
        for _, slot in self._parameter_slots():
            yield slot

    def named_buffers(self):
        for key, slot in self._entries():
            if not slot.is_parameter:
                yield key, slot.data

    # -- modes, gradients, state, dtype ----------------------------------------------------------------------
    def train(self, mode: bool = True):
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
            module._set_mode(bool(mode))
        return self

    def _set_mode(self, training: bool) -> None:
        """Pass the mode on to the NNX wrapper where it matters (batch norm, dropout)."""

    def eval(self):
        return self.train(False)

    def zero_grad(self) -> None:
        for slot in self.parameters():
            slot.grad = None

    def state_dict(self) -> OrderedDict:
        return OrderedDict((key, slot.data) for key, slot in self._entries())

    def load_state_dict(self, state_dict: Mapping, strict: bool = True):
        """Copy arrays (or tensors) in, all or nothing, keeping each variable's dtype."""
        entries = dict(self._entries())
        problems = []
        if strict:
            missing = [key for key in entries if key not in state_dict]
            unexpected = [key for key in state_dict if key not in entries]
            problems += [f"missing keys: {missing}"] * bool(missing) + [f"unexpected keys: {unexpected}"] * bool(
                unexpected)
        converted = {}
        for key in entries.keys() & state_dict.keys():
            value = _as_numpy(state_dict[key])
            if value.shape != entries[key].shape:
                problems.append(f"{key}: expected shape {entries[key].shape}, got {value.shape}")
            else:
                converted[key] = value
        if problems:
            raise RuntimeError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        for key, value in converted.items():
            entries[key].data = value
        return self

    def to(self, dtype):
        """Cast parameters, gradients and float buffers to float32 or float64 (Flax then computes in it)."""
        dtype = _numpy_dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise NotImplementedError(f"{type(self).__name__}.to: float32 or float64 only, got {dtype}")
        for _, variable in nnx.iter_graph(self.nnx):  # parameters, batch statistics (tracked by torch or not)
            if isinstance(variable, (nnx.Param, nnx.BatchStat)):
                value = variable.get_value()
                variable.set_value(jax.ShapeDtypeStruct(value.shape, dtype) if _is_abstract(variable)
                                   else _jax(value, dtype))
        for slot in self.parameters():
            if slot.grad is not None:
                slot.grad = slot.grad.astype(dtype)
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def _factory(self, device, dtype):
        _check_device(type(self).__name__, device)
        if dtype is not None:
            self.to(dtype)

    def __getattr__(self, name):
        children = self.__dict__.get("_children", {})
        if name in children:
            return children[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __repr__(self) -> str:
        if not self._children:
            return f"{type(self).__name__}()"
        inner = "\n".join(f"  ({name}): {child!r}".replace("\n", "\n  ") for name, child in self._children.items())
        return f"{type(self).__name__}(\n{inner}\n)"


# -- the Flax side: NNX wrappers that take and return torch's layout ----------------------------------------------

class _ChannelsLastLayer(_NnxModule):
    """A Flax conv on channels-first input: transposed in and out (exact)."""

    def __init__(self, layer):
        self.layer = layer

    def __call__(self, x):
        return _channels_first(self.layer(_channels_last(x)))


class _Function(_NnxModule):
    """A parameter-free Flax / JAX function as an NNX module."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)


class _Pool(_NnxModule):
    """Flax's max_pool / avg_pool on channels-first input; `window` None: adaptive (window = stride = in / out)."""

    def __init__(self, pool, window, strides, padding, output_size=None, **options):
        self.pool, self.window, self.strides, self.padding = pool, window, strides, padding
        self.output_size, self.options = output_size, tuple(options.items())

    def __call__(self, x):
        window, strides, padding = self.window, self.strides, self.padding
        if window is None:
            window = strides = _adaptive_window(x.shape[-2:], self.output_size)
        return _channels_first(self.pool(_channels_last(x), window, strides, padding, **dict(self.options)))


def _adaptive_window(size, output_size) -> tuple[int, int]:
    """An adaptive pool whose output size divides the input size is the plain pool with kernel = stride = in / out;
    Flax has no adaptive pooling for the other sizes."""
    out = tuple(n if o is None else o for n, o in zip(size, output_size, strict=True))
    if any(n % o for n, o in zip(size, out, strict=True)):
        raise NotImplementedError(f"adaptive pooling of {tuple(size)} to {out}: Flax has no adaptive pooling; only "
                                  "output sizes that divide the input size translate to its plain pooling")
    return tuple(n // o for n, o in zip(size, out, strict=True))


class _BatchNorm(_NnxModule):
    """nnx.BatchNorm on channels-first input (its feature axis 1) and torch's num_batches_tracked counter."""

    def __init__(self, norm, track_running_stats: bool):
        self.norm, self.track, self.training = norm, track_running_stats, True
        self.num_batches_tracked = _Bookkeeping(np.zeros((), dtype=np.int64))

    def __call__(self, x):
        if self.training and self.track:
            count = self.num_batches_tracked.get_value()
            self.num_batches_tracked.set_value(count + 1)  # torch's bookkeeping (nothing here reads it)
        return self.norm(x, use_running_average=self.track and not self.training)  # batch stats untracked: always


class _Dropout(_NnxModule):
    """nnx.Dropout with an explicit key per forward; the mask is Flax's dropout of ones with the same key.

    Every dropout layer's stream starts at DROPOUT_SEED, as a freshly seeded torch generator would: a check draws
    the same masks in every run (whatever else its process built first), at the price that two dropout layers of
    one model with inputs of one shape drop the same units at each step."""

    def __init__(self, p: float, channelwise: bool):
        self.p, self.channelwise, self.training = p, channelwise, True
        self.rngs = nnx.Rngs(dropout=DROPOUT_SEED)
        self.mask = _Mask(_NO_MASK)

    def __call__(self, x):
        if not self.training:
            return x
        broadcast = tuple(range(2, x.ndim)) if self.channelwise else ()  # Dropout2d: one draw per (N, C)
        dropout = nnx.Dropout(self.p, broadcast_dims=broadcast, deterministic=False)
        key = self.rngs.dropout()
        self.mask.set_value(dropout(jnp.ones_like(x), rngs=key))  # the multiplier Flax applied: 0 or 1 / (1 - p)
        return dropout(x, rngs=key)


class _Flatten(_NnxModule):
    def __init__(self, start_dim: int, end_dim: int):
        self.start_dim, self.end_dim = start_dim, end_dim

    def __call__(self, x):
        ndim = max(x.ndim, 1)
        start, end = self.start_dim % ndim, self.end_dim % ndim
        return jnp.reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1:])


class _Residual(_NnxModule):
    """tiny_resnet's block in Flax: relu(x + conv2(relu(conv1(x))))."""

    def __init__(self, conv1, conv2):
        self.conv1, self.conv2 = conv1, conv2

    def __call__(self, x):
        return nnx.relu(x + self.conv2(nnx.relu(self.conv1(x))))


class _BasicBlock(_NnxModule):
    """torchvision's BasicBlock in Flax."""

    def __init__(self, conv1, bn1, conv2, bn2, downsample):
        self.conv1, self.bn1, self.conv2, self.bn2, self.downsample = conv1, bn1, conv2, bn2, downsample

    def __call__(self, x):
        out = self.bn2(self.conv2(nnx.relu(self.bn1(self.conv1(x)))))
        return nnx.relu(out + (x if self.downsample is None else self.downsample(x)))


class _Bottleneck(_NnxModule):
    """torchvision's Bottleneck in Flax."""

    def __init__(self, conv1, bn1, conv2, bn2, conv3, bn3, downsample):
        self.conv1, self.bn1, self.conv2, self.bn2, self.conv3, self.bn3 = conv1, bn1, conv2, bn2, conv3, bn3
        self.downsample = downsample

    def __call__(self, x):
        out = nnx.relu(self.bn2(self.conv2(nnx.relu(self.bn1(self.conv1(x))))))
        out = self.bn3(self.conv3(out))
        return nnx.relu(out + (x if self.downsample is None else self.downsample(x)))


class _InvertedResidual(_NnxModule):
    """torchvision's MobileNetV2 InvertedResidual in Flax: its conv stack, plus the input when shapes allow."""

    def __init__(self, conv, use_res_connect: bool):
        self.conv, self.use_res_connect = conv, use_res_connect

    def __call__(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


# -- layers -------------------------------------------------------------------------------------------------------

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_FLAX_PADDING_MODES = {"circular": "CIRCULAR", "reflect": "REFLECT"}  # Flax's Conv pads these by its 'same' amount


def _conv_padding(padding, mode: str, kernel, dilation, stride):
    """torch's padding and padding_mode as Flax's Conv padding argument."""
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"Conv2d: invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
        if padding == "same" and stride != (1, 1):
            raise ValueError("Conv2d: padding='same' is not supported for strided convolutions")
        if padding == "valid":
            return "VALID"
    elif _pair("padding", padding) == (0, 0):
        return "VALID"  # nothing to pad: the padding mode does not matter
    if mode == "zeros":
        return "SAME" if padding == "same" else _symmetric(padding)  # Flax's SAME: the odd pixel after, as torch
    if mode not in _FLAX_PADDING_MODES:
        raise NotImplementedError(f"Conv2d: padding_mode={mode!r}: Flax's Conv has no such padding")
    spans = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
    if padding != "same" and any(2 * p != span for p, span in zip(_pair("padding", padding), spans, strict=True)):
        raise NotImplementedError(f"Conv2d: padding_mode={mode!r} with padding={padding!r}: Flax's Conv pads "
                                  f"{_FLAX_PADDING_MODES[mode]} only by its 'same' amount ((k_eff - 1) // 2 before, "
                                  "k_eff // 2 after), not by another")
    return _FLAX_PADDING_MODES[mode]


class Conv2d(Module):
    """nnx.Conv; OIHW weight <-> HWIO kernel, NCHW input <-> NHWC."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if int(value) < 1:
                raise ValueError(f"Conv2d: {name} must be positive, got {value}")
        if in_channels % groups or out_channels % groups:
            raise ValueError("Conv2d: in_channels and out_channels must be divisible by groups")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        kernel, strides, dilations = _pair("kernel_size", kernel_size), _pair("stride", stride), \
            _pair("dilation", dilation)
        flax_padding = _conv_padding(padding, padding_mode, kernel, dilations, strides)
        conv = self._lazy(lambda rngs: nnx.Conv(in_channels, out_channels, kernel, strides, padding=flax_padding,
                                                kernel_dilation=dilations, feature_group_count=groups,
                                                use_bias=bool(bias), rngs=rngs))
        self.nnx = _ChannelsLastLayer(conv)
        self._slot("weight", conv, "kernel", _oihw, _hwio)
        if bias:
            self._slot("bias", conv, "bias")
        self._factory(device, dtype)


class Linear(Module):
    """nnx.Linear on (*, in_features); weight (out, in) <-> kernel (in, out)."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        linear = self._lazy(lambda rngs: nnx.Linear(in_features, out_features, use_bias=bool(bias), rngs=rngs))
        self.nnx = linear
        self._slot("weight", linear, "kernel", _transposed, _transposed)
        if bias:
            self._slot("bias", linear, "bias")
        self._factory(device, dtype)


def _not_in_place(owner: str, inplace: bool) -> None:
    if inplace:
        raise NotImplementedError(f"{owner}: inplace=True: JAX arrays are immutable")


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        _not_in_place("ReLU", inplace)
        self.nnx = _Function(nnx.relu)


class ReLU6(Module):
    def __init__(self, inplace=False):
        super().__init__()
        _not_in_place("ReLU6", inplace)
        self.nnx = _Function(nnx.relu6)


class Hardtanh(Module):
    """nnx.hard_tanh (the range (-1, 1)) or nnx.relu6 (torch's ReLU6 is Hardtanh(0, 6)); Flax has no other range."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False, min_value=None, max_value=None):
        super().__init__()
        _not_in_place("Hardtanh", inplace)
        min_val = min_val if min_value is None else min_value  # torch's deprecated spellings
        max_val = max_val if max_value is None else max_value
        if not max_val > min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val ({min_val})")
        functions = {(-1.0, 1.0): nnx.hard_tanh, (0.0, 6.0): nnx.relu6}
        if (float(min_val), float(max_val)) not in functions:
            raise NotImplementedError(f"Hardtanh: min_val={min_val}, max_val={max_val}: Flax's hard_tanh clips to "
                                      "(-1, 1) only (and relu6 to (0, 6))")
        self.nnx = _Function(functions[float(min_val), float(max_val)])




class MaxPool2d(Module):
    """nnx.max_pool (-inf padding, as torch)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        if _pair("dilation", dilation) != (1, 1):
            raise NotImplementedError(f"MaxPool2d: dilation={dilation!r}: Flax's max_pool has no window dilation")
        _refuse("MaxPool2d", return_indices=return_indices, ceil_mode=ceil_mode)
        kernel = _pair("kernel_size", kernel_size)
        strides = kernel if stride is None else _pair("stride", stride)
        self.nnx = _Pool(nnx.max_pool, kernel, strides, _symmetric(padding))


class AvgPool2d(Module):
    """nnx.avg_pool; count_include_pad is Flax's argument of the same name."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        _refuse("AvgPool2d", ceil_mode=ceil_mode, divisor_override=divisor_override)
        kernel = _pair("kernel_size", kernel_size)
        strides = kernel if stride is None else _pair("stride", stride)
        self.nnx = _Pool(nnx.avg_pool, kernel, strides, _symmetric(padding),
                         count_include_pad=bool(count_include_pad))


def _output_size(output_size) -> tuple:
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"output_size must be an int or a pair, got {output_size!r}")
        return tuple(None if o is None else int(o) for o in output_size)
    return (int(output_size), int(output_size))


class AdaptiveAvgPool2d(Module):
    """nnx.avg_pool with kernel = stride = in / out, where the output size divides the input size."""

    def __init__(self, output_size):
        super().__init__()
        self.nnx = _Pool(nnx.avg_pool, None, None, "VALID", output_size=_output_size(output_size))


class AdaptiveMaxPool2d(Module):
    """nnx.max_pool with kernel = stride = in / out, where the output size divides the input size."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        _refuse("AdaptiveMaxPool2d", return_indices=return_indices)
        self.nnx = _Pool(nnx.max_pool, None, None, "VALID", output_size=_output_size(output_size))


class BatchNorm2d(Module):
    """nnx.BatchNorm over axis 1; torch's momentum m is Flax's 1 - m; weight/bias are scale/bias; running_mean/var
    are its mean/var batch statistics."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        if momentum is None:
            raise NotImplementedError("BatchNorm2d: momentum=None (a cumulative moving average): Flax's BatchNorm "
                                      "keeps an exponential moving average only")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm2d: momentum must be in [0, 1], got {momentum}")
        if not eps > 0:
            raise ValueError(f"BatchNorm2d: eps must be positive, got {eps}")
        norm = self._lazy(lambda rngs: nnx.BatchNorm(
            num_features, axis=1, momentum=1.0 - momentum,  # torch: (1 - m) r + m b; Flax: m r + (1 - m) b
            epsilon=eps, use_scale=bool(affine), use_bias=bool(affine and bias), use_fast_variance=False, rngs=rngs))
        self.nnx = _BatchNorm(norm, bool(track_running_stats))
        if affine:
            self._slot("weight", norm, "scale")
            if bias:
                self._slot("bias", norm, "bias")
        if track_running_stats:
            self._slot("running_mean", norm, "mean", is_parameter=False)
            self._slot("running_var", norm, "var", is_parameter=False)
            self._slot("num_batches_tracked", self.nnx, "num_batches_tracked", is_parameter=False)
        self._factory(device, dtype)

    def _set_mode(self, training: bool) -> None:
        self.nnx.training = training


class _DropoutBase(Module):
    _channelwise = False

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        _not_in_place(type(self).__name__, inplace)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.nnx = _Dropout(float(p), self._channelwise)

    @property
    def p(self) -> float:
        return self.nnx.p

    @p.setter
    def p(self, value: float) -> None:
        self.nnx.p = float(value)

    @property
    def mask(self) -> np.ndarray | None:
        """The multiplier of the last training-mode forward (Flax's dropout of ones with that forward's key)."""
        mask = _numpy(self.nnx.mask.get_value())
        return mask if self.training and mask.ndim else None  # (0-d: no training forward yet)

    def _set_mode(self, training: bool) -> None:
        self.nnx.training = training


class Dropout(_DropoutBase):
    """nnx.Dropout."""


class Dropout2d(_DropoutBase):
    """nnx.Dropout with broadcast_dims over the spatial axes: whole channels dropped."""

    _channelwise = True


class Flatten(Module):
    """jnp.reshape of dims start_dim..end_dim into one (Flax has no Flatten layer)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.nnx = _Flatten(int(start_dim), int(end_dim))


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
        self.nnx = _Function(_identity)


class Sequential(Module):
    """nnx.Sequential of the children's NNX modules; children named "0", "1", ... or by an OrderedDict."""

    def __init__(self, *modules):
        super().__init__()
        named = list(modules[0].items()) if len(modules) == 1 and isinstance(modules[0], Mapping) else \
            [(str(index), module) for index, module in enumerate(modules)]
        for name, module in named:
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: {name!r} is a {type(module).__name__}, not a module of this namespace")
            setattr(self, name, module)
        self.nnx = nnx.Sequential(*(module.nnx for _, module in named))

    def __getitem__(self, index):
        return list(self._children.values())[index]

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self):
        return iter(self._children.values())


class ResidualBlock(Module):
    """y = relu(x + conv2(relu(conv1(x)))), 3x3 same-padding convs (tiny_resnet's block)."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = Conv2d(channels, channels, 3, padding=1)
        self.conv2 = Conv2d(channels, channels, 3, padding=1)
        self.nnx = _Residual(self.conv1.nnx, self.conv2.nnx)


def _no_norm_layer(owner: str, norm_layer) -> None:
    if norm_layer is not None:
        raise NotImplementedError(f"{owner}: norm_layer={norm_layer!r}: only BatchNorm2d")


class BasicBlock(Module):
    """torchvision's BasicBlock (its arguments and state_dict keys)."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None):
        super().__init__()
        _no_norm_layer("BasicBlock", norm_layer)
        basic_block_layers(self, Conv2d, BatchNorm2d, inplanes, planes, stride, downsample, groups, base_width,
                           dilation)
        self.nnx = _BasicBlock(self.conv1.nnx, self.bn1.nnx, self.conv2.nnx, self.bn2.nnx,
                               None if downsample is None else downsample.nnx)


class Bottleneck(Module):
    """torchvision's Bottleneck (ResNet-50; ResNeXt with groups and base_width; dilation)."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None):
        super().__init__()
        _no_norm_layer("Bottleneck", norm_layer)
        bottleneck_layers(self, Conv2d, BatchNorm2d, inplanes, planes, stride, downsample, groups, base_width,
                          dilation)
        self.nnx = _Bottleneck(self.conv1.nnx, self.bn1.nnx, self.conv2.nnx, self.bn2.nnx, self.conv3.nnx,
                               self.bn3.nnx, None if downsample is None else downsample.nnx)


def _conv_bn_relu6(inp, oup, kernel_size, stride=1, groups=1) -> Sequential:
    """torchvision's Conv2dNormActivation as MobileNetV2 uses it."""
    return Sequential(Conv2d(inp, oup, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
                      BatchNorm2d(oup), ReLU6())


class InvertedResidual(Module):
    """torchvision's MobileNetV2 InvertedResidual (its arguments and state_dict keys)."""

    def __init__(self, inp, oup, stride, expand_ratio, norm_layer=None):
        super().__init__()
        _no_norm_layer("InvertedResidual", norm_layer)
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2 instead of {stride}")
        hidden = int(round(inp * expand_ratio))
        self.stride, self.out_channels = stride, oup
        self.use_res_connect = stride == 1 and inp == oup
        layers = [_conv_bn_relu6(inp, hidden, 1)] if expand_ratio != 1 else []
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden), Conv2d(hidden, oup, 1, bias=False),
                   BatchNorm2d(oup)]
        self.conv = Sequential(*layers)
        self.nnx = _InvertedResidual(self.conv.nnx, self.use_res_connect)


# -- loss ---------------------------------------------------------------------------------------------------------

_REDUCTIONS = {"mean": "mean", "sum": "sum", "none": None}


@partial(jax.jit, static_argnames=("axis", "smoothing", "reduction", "probabilities")) if UNAVAILABLE is None \
    else _identity
def _cross_entropy(logits, targets, axis: int, smoothing: float, reduction: str, probabilities: bool):
    """optax's softmax cross-entropy of logits (classes on `axis`) against class indices or probabilities."""
    if probabilities or smoothing:
        labels = targets.astype(logits.dtype) if probabilities else jax.nn.one_hot(targets, logits.shape[axis],
                                                                                 dtype=logits.dtype, axis=axis)
        if smoothing:
            labels = optax.smooth_labels(labels, smoothing, axis=axis)
        losses = optax.softmax_cross_entropy(logits, labels, axis=axis)
    else:
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets, axis=axis)
    how = _REDUCTIONS[reduction]  # optax returns per-sample losses: torch's reduction is their mean or sum
    return losses if how is None else getattr(jnp, how)(losses)


class CrossEntropyLoss:
    """optax.softmax_cross_entropy_with_integer_labels (class indices) or optax.softmax_cross_entropy (class
    probabilities, and label smoothing through optax.smooth_labels: (1 - e) y + e / K, torch's definition)."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        _require_framework()
        if weight is not None:
            raise NotImplementedError("CrossEntropyLoss: weight: optax's softmax cross-entropy has no class weights")
        _refuse("CrossEntropyLoss", size_average=size_average, reduce=reduce)
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{reduction} is not a valid value for reduction")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.ignore_index, self.reduction, self.label_smoothing = ignore_index, reduction, float(label_smoothing)
        self._last = None

    def __call__(self, logits, targets):
        logits, targets = np.asarray(logits), np.asarray(targets)
        probabilities = targets.dtype.kind == "f"
        if not probabilities and np.any(targets == self.ignore_index):
            raise NotImplementedError(f"CrossEntropyLoss: ignore_index={self.ignore_index} occurs in the targets: "
                                      "optax's softmax cross-entropy ignores no target")
        axis = 0 if logits.ndim == 1 else 1  # torch's class axis: 1, or 0 for unbatched (C,) logits
        options = dict(axis=axis, smoothing=self.label_smoothing, reduction=self.reduction,
                       probabilities=probabilities)
        out, vjp = jax.vjp(lambda z: _cross_entropy(z, _jax(targets), **options), _jax(logits))
        self._last = (vjp, out.shape, out.dtype)
        return _numpy(out)

    def backward(self, grad_loss=1.0):
        vjp, shape, dtype = self._last
        (grad,) = vjp(_jax(np.broadcast_to(np.asarray(grad_loss, dtype=dtype), shape)))
        return _numpy(grad)


# -- optimizers and the schedule ----------------------------------------------------------------------------------

class _Optimizer:
    """An optax transformation per parameter (torch keeps per-parameter state and skips those without a gradient),
    its learning rate injected (`inject_hyperparams`) so that `lr` stays writable."""

    _slots: dict = {}  # optax state class -> {optax field: torch slot name}

    def __init__(self, params, lr):
        _require_framework()
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        self._lr, self._states, self._transforms = float(lr), {}, {}

    def _inner(self, learning_rate):
        raise NotImplementedError

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = float(value)

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        for i, param in enumerate(self.params):
            if param.grad is None:
                continue
            data = _jax(param.data)
            transform, init, update = self._transform(data.dtype)
            state = self._states[i] if i in self._states else init(data)
            new, self._states[i] = update(_jax(param.grad, data.dtype), state, data, _jax(self._lr, data.dtype))
            param.data = _numpy(new)

    def _transform(self, dtype):
        """(the optax transformation for parameters of `dtype`, its jitted init and update: one compilation per
        shape each)."""
        if dtype not in self._transforms:
            transform = optax.inject_hyperparams(self._inner, hyperparam_dtype=dtype)(learning_rate=self._lr)

            def update(grad, state, data, lr):
                state.hyperparams["learning_rate"] = lr  # the current lr (StepLR writes it)
                updates, state = transform.update(grad, state, data)
                return optax.apply_updates(data, updates), state

            self._transforms[dtype] = (transform, jax.jit(transform.init), jax.jit(update))
        return self._transforms[dtype]

    @property
    def state(self) -> dict:
        """{parameter position: {torch slot: value}} translated from optax's state."""
        found = {}
        for i, state in self._states.items():
            slots = {}
            for cls, names in self._slots.items():
                inner = _find_state(state, cls)
                if inner is not None:
                    slots.update({torch_name: _slot_value(getattr(inner, name)) for name, torch_name in names.items()})
            if slots:
                found[i] = slots
        return found


def _find_state(state, cls):
    """The (first) optax state of type `cls` nested in a chain / inject_hyperparams state."""
    if isinstance(state, cls):
        return state
    if isinstance(state, tuple):
        for inner in state:
            found = _find_state(inner, cls)
            if found is not None:
                return found
    return None


def _slot_value(value):
    value = np.asarray(value)
    return float(value) if value.ndim == 0 and value.dtype.kind in "iu" else value.copy()


class SGD(_Optimizer):
    """optax.sgd (momentum: optax.trace, whose zero start gives torch's first buffer = gradient; nesterov), weight
    decay as optax.add_decayed_weights before it (torch adds weight_decay * param to the gradient first)."""

    _slots = {} if UNAVAILABLE is not None else {optax.TraceState: {"trace": "momentum_buffer"}}

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        super().__init__(params, lr)
        _refuse("SGD", maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused)
        if momentum < 0.0 or weight_decay < 0.0:
            raise ValueError("SGD: momentum and weight_decay must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        if momentum != 0 and dampening != 0:  # (without momentum torch never reads dampening)
            raise NotImplementedError(f"SGD: dampening={dampening}: optax's sgd/trace has no dampening")
        self.momentum, self.weight_decay, self.nesterov = float(momentum), float(weight_decay), bool(nesterov)

    def _inner(self, learning_rate):
        sgd = optax.sgd(learning_rate, momentum=self.momentum or None, nesterov=self.nesterov)  # momentum 0: no trace
        return optax.chain(optax.add_decayed_weights(self.weight_decay), sgd) if self.weight_decay else sgd


class Adam(_Optimizer):
    """optax.adam (eps added outside the square root, eps_root=0, as torch), L2 weight decay as
    optax.add_decayed_weights before it (torch.optim.Adam adds it to the gradient, unlike AdamW)."""

    _slots = {} if UNAVAILABLE is not None else {
        optax.ScaleByAdamState: {"count": "step", "mu": "exp_avg", "nu": "exp_avg_sq"}}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        super().__init__(params, lr)
        if amsgrad:
            raise NotImplementedError("Adam: amsgrad=True: optax.amsgrad keeps the maximum of the bias-corrected "
                                      "second moment, torch of the raw one (another algorithm)")
        _refuse("Adam", foreach=foreach, maximize=maximize, capturable=capturable, differentiable=differentiable,
                fused=fused, decoupled_weight_decay=decoupled_weight_decay)
        if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameters: {betas}")
        if eps < 0.0 or weight_decay < 0.0:
            raise ValueError("Adam: eps and weight_decay must be >= 0")
        self.betas, self.eps, self.weight_decay = (float(betas[0]), float(betas[1])), float(eps), float(weight_decay)

    def _inner(self, learning_rate):
        adam = optax.adam(learning_rate, b1=self.betas[0], b2=self.betas[1], eps=self.eps)
        return optax.chain(optax.add_decayed_weights(self.weight_decay), adam) if self.weight_decay else adam


class StepLR:
    """optax.exponential_decay(lr, step_size, gamma, staircase=True) evaluated at the epoch count: lr * gamma **
    (epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        _require_framework()
        if not isinstance(optimizer, _Optimizer):
            raise TypeError(f"StepLR: {type(optimizer).__name__} is not an optimizer of this namespace")
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        if last_epoch != -1:
            raise NotImplementedError(f"StepLR: last_epoch={last_epoch} (resuming a schedule) is not translated")
        self.optimizer, self.step_size, self.gamma, self.last_epoch = optimizer, step_size, gamma, 0
        self._schedule = optax.exponential_decay(optimizer.lr, transition_steps=step_size, decay_rate=gamma,
                                                 staircase=True)

    def step(self) -> None:
        self.last_epoch += 1
        self.optimizer.lr = float(self._schedule(self.last_epoch))

    def get_last_lr(self) -> list[float]:
        return [self.optimizer.lr]
