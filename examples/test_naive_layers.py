"""The conformance checks as this project's own pytest cases: one case per check, ids naming tier, op or zoo
model, dtype and device (`pytest test_naive_layers.py -k "op-Conv2d"`). What naive_layers lacks (BatchNorm2d,
Dropout, float32, ...) is skipped as not implemented; a known failure would go in an xfails list, not here."""

import naive_layers

from reference.testing import parametrize_with_conformance


@parametrize_with_conformance(naive_layers)
def test_naive_layers_conform(check):
    check()
