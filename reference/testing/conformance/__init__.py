"""The conformance engine: point it at any NumPy layer namespace mirroring torch.nn and get a compliance table.

Three entry points share it: `python -m reference conform MODULE`, `parametrize_with_conformance(module)` on a
user's `def test_x(check): check()`, and the project's own `pytest conformance --impl MODULE`. The layer
contract is in `protocol`, the op database in `database`, per-model settings on the zoo entries.
"""

from __future__ import annotations

from .engine import ALL_TIERS, DEVICES, DTYPES, TIERS, Check, checks
from .reproduce import reproduce


def parametrize_with_conformance(module, tiers=TIERS, dtypes=DTYPES, devices=DEVICES):
    """A pytest decorator: one case per check of the layer namespace `module` (a module or its import name),
    with ids naming tier, op or model, dtype and device. The decorated test takes one argument, `check`, and
    calls it; what the namespace lacks is skipped as not implemented."""
    import pytest

    found = checks(module, tiers, dtypes, devices)
    return pytest.mark.parametrize("check", found, ids=[check.id for check in found])


__all__ = ["ALL_TIERS", "Check", "DEVICES", "DTYPES", "TIERS", "checks", "parametrize_with_conformance", "reproduce"]
