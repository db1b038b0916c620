"""The engine: every conformance check of a layer namespace, as callables the three entry points share.

`checks(namespace, tiers, dtypes, devices)` lists one `Check` per tier x subject (op or zoo model) x dtype x
device; calling it runs it (hypothesis draws the configurations where the tier has them). Tiers:
- "op": every subject of the op database against torch (forward, every gradient, buffers, float32 budget);
- "oracle": SciPy for convolution and pooling, gradcheck/gradgradcheck for every differentiable subject;
- "model": every zoo model (and variant) in train and eval mode against its torch twin;
- "trajectory": every zoo model trained 20 steps with SGD and Adam in both frameworks;
- "statistics": dropout's keep rate and masks, and each layer's initial parameters, against torch's distributions;
- "device": torch on CUDA against torch on the CPU (is the reference itself consistent?), not in the defaults.
What the namespace lacks is skipped as "not implemented", with the reason, never failed: names an op or model
needs, keywords of torch's it refuses, NotImplementedError it raises (dtypes included). `require_all` turns that
into a failure (the project's own implementation must implement everything). A failure prints the snippet
that reruns it: `reproduce(namespace, check_id, **arguments)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from . import verdicts as V

TIERS = ("op", "oracle", "model", "trajectory", "statistics")
ALL_TIERS = (*TIERS, "device")
DTYPES = ("float64", "float32")
DEVICES = ("cpu", "cuda")
NO_CUDA = "no CUDA device visible to torch (torch.cuda.is_available() is False)"


class NotImplementedInNamespace(Exception):
    """Raised by a check whose subject the namespace does not implement (pytest turns it into a skip)."""


@dataclass(frozen=True)
class Check:
    """One conformance check: a tier, a subject (op or model), a dtype and a device of a namespace. Call it."""

    tier: str
    subject: str
    dtype: str
    device: str
    namespace: str
    example: Callable = field(repr=False)  # (nn, snippet, **arguments) -> None: one case
    needs: Callable = field(repr=False)  # () -> the namespace names the check needs
    draw: Callable | None = field(default=None, repr=False)  # () -> strategy of {argument: value}; None: one case
    depth: float = 1.0  # share of the hypothesis profile's max_examples
    slow: bool = False  # heavy (a 25M-parameter model): the pytest plugin marks it `slow` where that marker exists
    require_all: bool = False

    @property
    def id(self) -> str:
        return f"{self.tier}-{self.subject}-{self.dtype}-{self.device}"

    def __call__(self) -> None:
        """Run the check; skip (pytest.skip) what is not implemented or has no device here."""
        import pytest

        try:
            self.run()
        except NotImplementedInNamespace as reason:
            pytest.skip(f"not implemented: {reason}")

    def run(self) -> None:
        """Run the check and record its verdict; NotImplementedInNamespace when the namespace implements none of
        it, AssertionError (FAIL), Refused or Crashed (see `verdicts`) when it does not conform."""
        import pytest
        import torch
        from hypothesis.errors import Flaky

        from .harness import strict_torch_numerics
        from .namespace import load_namespace, missing

        if self.device == "cuda" and not torch.cuda.is_available():
            self._outcome("skipped", NO_CUDA)
            pytest.skip(NO_CUDA)
        nn = load_namespace(self.namespace)
        unavailable = getattr(nn, "UNAVAILABLE", None)
        if unavailable:
            self._not_implemented(str(unavailable))
        absent = missing(nn, self.needs())
        if absent:
            self._not_implemented(f"{self.namespace} has no {', '.join(absent)}")
        tally = Tally(strict=self.require_all)
        try:
            with V.time_limit(V.CHECK_TIMEOUT), strict_torch_numerics():
                self._examples(nn, tally)
        except V.TimedOut as error:
            self._outcome(V.CRASHED, f"timed out: {error}", examples=tally.ran)
            raise V.Crashed(f"{self.id}: timed out: {error}") from None
        except AssertionError as error:
            self._outcome("failed", _failure_summary(error), examples=tally.ran)
            raise
        except Flaky as error:  # a failing example that passed when hypothesis replayed it
            self._outcome("failed", f"nondeterministic: a failing case passed when rerun ({V.short(error, 200)})",
                          examples=tally.ran)
            raise AssertionError(f"{self.id}: the implementation's results change from run to run: {error}") from None
        except (V.Refused, V.Crashed) as error:
            self._outcome(V.REFUSED if isinstance(error, V.Refused) else V.CRASHED, str(error), examples=tally.ran)
            raise
        except Exception as error:  # raised outside the wrapped calls: said with where it came from
            self._outcome(V.CRASHED, f"{V.short(error)} (at {_raised_at(error)})", examples=tally.ran)
            raise
        if not tally.ran:
            self._not_implemented("; ".join(sorted(tally.unsupported)))
        self._outcome("passed", "", examples=tally.ran, unsupported=sum(tally.unsupported.values()),
                      unsupported_reasons=sorted(tally.unsupported)[:5])

    def _examples(self, nn, tally) -> None:
        def one(**arguments):
            tally.run(self.example, nn, lambda **shown: reproduction(self.namespace, self.id, **shown), **arguments)

        if self.draw is None:
            one()
            return
        from hypothesis import HealthCheck, given, settings

        profile = settings()
        # database=None: every check runs the same inner function, so a failure saved for one would be replayed
        # into the next (another strategy: "inconsistent data generation").
        depth = settings(profile, deadline=None, max_examples=max(1, round(profile.max_examples * self.depth)),
                         suppress_health_check=[*profile.suppress_health_check, HealthCheck.too_slow], database=None)

        @depth
        @given(arguments=self.draw())
        def drawn(arguments):
            one(**arguments)

        drawn()

    def _not_implemented(self, reason: str):
        if self.require_all:
            raise AssertionError(f"{self.id}: {reason}; the project's own implementation must implement it")
        self._outcome(V.NOT_IMPLEMENTED, reason)
        raise NotImplementedInNamespace(reason)

    def _outcome(self, outcome: str, reason: str, **values) -> None:
        from reference.testing.compare import Where, record

        record(Where(self.tier, self.subject, self.dtype, self.device), self.id, "outcome", outcome=outcome,
               reason=reason, namespace=self.namespace, **values)


def _failure_summary(error: AssertionError) -> str:
    """The comparison's first line and its worst element: the FAIL's reason in the report."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    worst = next((line for line in lines if line.startswith("worst element")), None)
    return "; ".join(filter(None, [lines[0] if lines else type(error).__name__, worst]))


def _raised_at(error: BaseException) -> str:
    """file:line (function) of the innermost frame an exception was raised in."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno} ({frames[-1].name})" if frames else "unknown"


class Tally:
    """Counts the cases a check ran and those the namespace does not support (NotImplementedError), by reason."""

    def __init__(self, strict: bool = False):
        self.strict, self.ran, self.unsupported = strict, 0, {}

    def run(self, function, *args, **kwargs) -> None:
        try:
            function(*args, **kwargs)
        except NotImplementedError as error:
            if self.strict:
                raise
            reason = str(error) or type(error).__name__
            self.unsupported[reason] = self.unsupported.get(reason, 0) + 1
            return
        self.ran += 1


def reproduction(namespace: str, check_id: str, **arguments) -> str:
    """Python that reruns one case of one check against the same namespace."""
    shown = "".join(f", {key}={value!r}" for key, value in arguments.items())
    imports = "from reference.testing.conformance import reproduce\n"
    if "LayerConfig(" in shown:
        imports += "from reference.testing.strategies import LayerConfig\n"
    return f"{imports}reproduce({namespace!r}, {check_id!r}{shown})"


def checks(namespace: str | ModuleType = "reference.numpy_nn", tiers=TIERS, dtypes=DTYPES, devices=DEVICES,
           require_all: bool = False) -> list[Check]:
    """Every check of `namespace` in the given tiers, dtypes and devices (the namespace is imported when a check
    runs, so listing them is cheap)."""
    from . import tiers as T
    from .namespace import namespace_name

    name = namespace_name(namespace)
    unknown = [tier for tier in tiers if tier not in ALL_TIERS]
    if unknown:
        raise ValueError(f"unknown tiers {unknown}; the tiers are {list(ALL_TIERS)}")
    found = []
    for tier in ALL_TIERS:
        if tier in tiers:
            found += [Check(namespace=name, require_all=require_all, **spec)
                      for spec in T.TIER_CHECKS[tier](dtypes, devices)]
    return found
