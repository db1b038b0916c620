"""Every oracle fails on a deliberately broken implementation (so none of them is a check that cannot fail).

Each mutation of the op database is patched into `reference.numpy_nn` and every oracle the entry names for it
must raise AssertionError: the torch comparison, the SciPy oracle, the gradcheck-based check and the
training-trajectory check. The unmutated code passes the same calls, checked first in each test, so a failure
here cannot come from the configuration. Checks of mutants are not recorded in the conformance report.
"""

from __future__ import annotations

import pytest

import reference.numpy_nn as nnp
from reference.testing.compare import Where, not_recorded
from reference.testing.conformance.database import OPS
from reference.testing.conformance.harness import assert_matches_torch
from reference.testing.conformance.models import run_trajectory
from reference.testing.conformance.oracles import gradients_pass_gradcheck

SEED = 7


def oracle_call(op, mutation, oracle: str):
    """The call of one oracle on the mutation's configuration (reference.numpy_nn, float64, CPU)."""
    subject = next(s for s in op.subjects() if s.variant.suffix == mutation.variant)
    where = Where("oracle", subject.name, "float64", "cpu")
    if oracle == "torch":
        return lambda: assert_matches_torch(nnp, subject, mutation.config, SEED, "float64", "cpu")
    if oracle == "scipy":
        return lambda: op.scipy(nnp, mutation.config, SEED, where)
    if oracle == "gradcheck":
        return lambda: gradients_pass_gradcheck(nnp, subject, mutation.config, SEED, where)
    _, model, optimizer = oracle.split(":")
    return lambda: run_trajectory(nnp, model, optimizer, "float64", steps=2)


CASES = [pytest.param(op, mutation, oracle, id=f"{mutation.name}-{oracle.split(':')[0]}")
         for op in OPS for mutation in op.mutations for oracle in mutation.oracles]


@pytest.mark.parametrize(("op", "mutation", "oracle"), CASES)
def test_oracle_fails_on_mutant(op, mutation, oracle, monkeypatch):
    check = oracle_call(op, mutation, oracle)
    with not_recorded():
        check()  # the real implementation passes this exact check
        mutation.patch(monkeypatch)
        with pytest.raises(AssertionError):
            check()
