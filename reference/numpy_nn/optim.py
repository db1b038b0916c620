"""Optimizers and a learning-rate schedule with torch.optim's exact update rules, in NumPy.

Parameters are objects with `.data` (updated in place) and `.grad` (None means "skip", as torch).
`state` is keyed by parameter position, like torch's `optimizer.state_dict()["state"]`."""

import numpy as np

from .validation import check_real, is_int


class Optimizer:
    """Shared bookkeeping: the parameter list, the learning rate, per-parameter state, zero_grad."""

    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        self.lr = _non_negative(type(self).__name__, "learning rate", lr)
        self.state = {}

    def zero_grad(self):
        """Drop every gradient (torch's default set_to_none=True)."""
        for param in self.params:
            param.grad = None

    def _params_with_grad(self):
        """(position, parameter) for each parameter that received a gradient."""
        return [(i, p) for i, p in enumerate(self.params) if p.grad is not None]


def _non_negative(owner, name, value):
    """A hyper-parameter that must be a real number >= 0 (NaN refused): torch's message, and the value."""
    try:
        return check_real(owner, name, value, 0.0)
    except (TypeError, ValueError):
        raise ValueError(f"Invalid {name} value: {value!r} (must be a real number >= 0)") from None


def _refuse(owner, **options):
    """torch options this NumPy port does not implement: each must keep its default (None or False)."""
    for name, value in options.items():
        if value not in (None, False):
            raise NotImplementedError(f"{owner}: {name}={value!r} is not supported (only its default)")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, L2 weight decay and Nesterov."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        _refuse("SGD", maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused)
        momentum = _non_negative("SGD", "momentum", momentum)
        weight_decay = _non_negative("SGD", "weight_decay", weight_decay)
        dampening = check_real("SGD", "dampening", dampening)
        if nesterov and (momentum <= 0.0 or dampening != 0.0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening")
        super().__init__(params, lr)
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = bool(nesterov)

    def step(self):
        """One update; the first momentum step sets the buffer to the gradient (no dampening), as torch."""
        for i, param in self._params_with_grad():
            d_p = param.grad
            if self.weight_decay != 0.0:
                d_p = d_p + self.weight_decay * param.data
            if self.momentum != 0.0:
                state = self.state.setdefault(i, {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = d_p.copy()
                else:
                    buf *= self.momentum
                    buf += (1.0 - self.dampening) * d_p
                d_p = d_p + self.momentum * buf if self.nesterov else buf
            param.data -= self.lr * d_p


class Adam(Optimizer):
    """Adam with bias correction and L2 weight decay added to the gradient (torch.optim.Adam, not AdamW)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        _refuse("Adam", amsgrad=amsgrad, foreach=foreach, maximize=maximize, capturable=capturable,
                differentiable=differentiable, fused=fused, decoupled_weight_decay=decoupled_weight_decay)
        eps = _non_negative("Adam", "epsilon", eps)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Invalid betas: {betas!r} (must be a pair)")
        for index, beta in enumerate(betas):
            if isinstance(beta, bool) or not isinstance(beta, (int, float, np.number)) or not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {index}: {beta!r} (must be in [0, 1))")
        weight_decay = _non_negative("Adam", "weight_decay", weight_decay)
        super().__init__(params, lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = eps
        self.weight_decay = weight_decay

    def step(self):
        """One update in torch's order: denom = sqrt(v) / sqrt(1 - beta2^t) + eps, step = lr / (1 - beta1^t)."""
        beta1, beta2 = self.betas
        for i, param in self._params_with_grad():
            grad = param.grad
            if self.weight_decay != 0.0:
                grad = grad + self.weight_decay * param.data
            state = self.state.get(i)
            if state is None:
                zeros = np.zeros_like(param.data)
                state = self.state[i] = {"step": 0, "exp_avg": zeros, "exp_avg_sq": zeros.copy()}
            state["step"] += 1
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg += (1.0 - beta1) * (grad - exp_avg)  # torch's lerp toward grad
            exp_avg_sq *= beta2
            exp_avg_sq += (1.0 - beta2) * grad * grad
            bias_correction1 = 1.0 - beta1 ** state["step"]
            bias_correction2 = 1.0 - beta2 ** state["step"]
            step_size = self.lr / bias_correction1
            denom = np.sqrt(exp_avg_sq) / bias_correction2**0.5 + self.eps
            param.data -= step_size * exp_avg / denom


class StepLR:
    """Multiply the optimizer's lr by gamma every `step_size` calls to step() (call once per epoch)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"StepLR: {type(optimizer).__name__} is not an Optimizer")
        if not is_int(step_size) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        if last_epoch != -1:
            raise NotImplementedError(f"StepLR: last_epoch={last_epoch!r} (resuming a schedule) is not supported")
        self.optimizer = optimizer
        self.step_size = step_size
        self.gamma = check_real("StepLR", "gamma", gamma)
        self.last_epoch = 0

    def step(self):
        """Advance one epoch; decay the lr at multiples of step_size (chained, as torch)."""
        self.last_epoch += 1
        if self.last_epoch % self.step_size == 0:
            self.optimizer.lr *= self.gamma

    def get_last_lr(self):
        """The current learning rate as a one-element list, like torch's per-group list."""
        return [self.optimizer.lr]
