"""Every oracle fails on a deliberately broken implementation (so none of them is a check that cannot fail).

Each mutation of the op database is patched into `reference.numpy_nn` and every oracle the entry names for it
must find it not conforming (FAIL, refused or crashed): the torch comparison, the SciPy oracle, the
gradcheck-based check, the training-trajectory check and the statistics tier. The unmutated code passes the
same calls, checked first in each test, so a failure here cannot come from the configuration. Checks of mutants
are not recorded in the conformance report; whether each was caught is (the report counts the bugs caught of
those planted).
"""

from __future__ import annotations

import pytest

import reference.numpy_nn as nnp
from reference.testing.compare import Where, not_recorded, record
from reference.testing.conformance.database import OPS
from reference.testing.conformance.harness import assert_matches_scipy, assert_matches_torch
from reference.testing.conformance.models import run_trajectory
from reference.testing.conformance.oracles import gradients_pass_gradcheck
from reference.testing.conformance.statistics import STATISTICS
from reference.testing.conformance.verdicts import Crashed, Refused

SEED = 7
NOT_CONFORMING = (AssertionError, Refused, Crashed)  # FAIL, refused, crashed: the oracle caught the mutant


def oracle_call(op, mutation, oracle: str):
    """The call of one oracle on the mutation's configuration (reference.numpy_nn, float64, CPU)."""
    if oracle.startswith("statistics:"):
        subject = oracle.partition(":")[2]
        drawn_op, test = STATISTICS[subject]
        return lambda: test(nnp, drawn_op, "float64", Where("statistics", subject, "float64", "cpu"))
    subject = next(s for s in op.subjects() if s.variant.suffix == mutation.variant)
    where = Where("oracle", subject.name, "float64", "cpu")
    if oracle == "torch":
        return lambda: assert_matches_torch(nnp, subject, mutation.config, SEED, "float64", "cpu",
                                            regime=mutation.regime)
    if oracle == "scipy":
        return lambda: assert_matches_scipy(nnp, subject, mutation.config, SEED, where, mutation.regime)
    if oracle == "gradcheck":
        return lambda: gradients_pass_gradcheck(nnp, subject, mutation.config, SEED, where)
    _, model, optimizer = oracle.split(":")
    return lambda: run_trajectory(nnp, model, optimizer, "float64", steps=2)


CASES = [pytest.param(op, mutation, oracle, id=f"{op.name}-{mutation.name}-{oracle.split(':')[0]}")
         for op in OPS for mutation in op.mutations for oracle in mutation.oracles]


@pytest.mark.parametrize(("op", "mutation", "oracle"), CASES)
def test_oracle_fails_on_mutant(op, mutation, oracle, monkeypatch):
    check = oracle_call(op, mutation, oracle)
    with not_recorded():
        check()  # the real implementation passes this exact check
        mutation.patch(monkeypatch)
        try:
            check()
        except NOT_CONFORMING:
            caught = True
        else:
            caught = False
    record(Where("mutation", f"{op.name}: {mutation.name}", "float64", "cpu"), oracle, "mutation", caught=caught)
    assert caught, f"the {oracle} oracle did not catch {mutation.name} ({mutation.patch.__doc__.strip()})"
