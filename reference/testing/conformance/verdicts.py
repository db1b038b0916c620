"""The verdicts a check can end with, and how what the implementation under test does becomes one of them.

Every check ends as exactly one of:
- pass;
- FAIL: the numbers differ (an AssertionError of the comparison, naming the worst element);
- refused: the implementation raised ValueError or TypeError (what a layer raises for input it does not accept)
  on a configuration and input torch accepts;
- crashed: it raised any other exception, returned a result of the wrong shape, dtype or type, or gave no result
  within the check's time limit;
- not implemented: it lacks a name the check needs or raised NotImplementedError.
Nothing an implementation does may escape as anything else: the engine wraps every call into it.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

import numpy as np

PASS, FAIL, REFUSED, CRASHED, NOT_IMPLEMENTED = "pass", "FAIL", "refused", "crashed", "not implemented"
CHECK_TIMEOUT = 600.0  # seconds one check may run (all its examples); the CLI's --timeout sets it
RETRY_ALARM = 0.5  # seconds between repeats of an expired check's alarm
FORWARD_ONLY = "_forward_only"  # results key: backward raised NotImplementedError, gradients not compared


class Refused(Exception):
    """The implementation raised ValueError or TypeError on a case torch accepts."""


class Crashed(Exception):
    """The implementation raised another exception, or returned something of the wrong shape, dtype or type."""


class TimedOut(BaseException):
    """No result within the check's time limit (a BaseException, so that an `except Exception` in the
    implementation cannot swallow it)."""


def short(error: BaseException, limit: int = 300) -> str:
    """`Type: message` of an exception, on one line, at most `limit` characters."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def implementation(what: str):
    """Calls into the implementation under test: ValueError/TypeError become Refused, other exceptions Crashed;
    NotImplementedError (not implemented) and the engine's own verdicts pass through."""
    try:
        yield
    except (NotImplementedError, Refused, Crashed):
        raise
    except (ValueError, TypeError) as error:
        raise Refused(f"{what} raised {short(error)}") from error
    except Exception as error:
        raise Crashed(f"{what} raised {short(error)}") from error


def as_result(value, expected, key: str) -> np.ndarray:
    """The implementation's result `value` as an array shaped and typed like torch's `expected` result; Crashed
    when it is not an array of numbers, has another shape, or another float dtype."""
    try:
        array = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
    except Exception as error:
        raise Crashed(f"{key}: returned a {type(value).__name__} that is no array ({short(error)})") from error
    if array.dtype.kind not in "fiub":
        raise Crashed(f"{key}: returned a {type(value).__name__} of dtype {array.dtype}, not an array of numbers")
    if array.shape != expected.shape:
        raise Crashed(f"{key}: returned shape {array.shape}, torch's is {expected.shape}")
    if expected.dtype.kind == "f" and array.dtype != expected.dtype:
        raise Crashed(f"{key}: returned dtype {array.dtype}, expected {expected.dtype} (torch's, from the input)")
    if expected.dtype.kind in "iu" and array.dtype.kind not in "iu":
        raise Crashed(f"{key}: returned dtype {array.dtype}, expected integers ({expected.dtype})")
    return array


@contextmanager
def time_limit(seconds: float | None):
    """Raise TimedOut in the block after `seconds` (SIGALRM: the main thread of a POSIX process only; elsewhere,
    and for `None`, no limit). A call stuck in native code is interrupted when it returns to Python. The alarm
    repeats every RETRY_ALARM seconds: an exception raised where Python ignores it (a garbage-collector callback,
    a __del__) is raised again."""
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimedOut(f"no result within {seconds:g} s (the check's time limit)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, RETRY_ALARM)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
