"""The test module `python -m reference conform` runs: one case per check of the namespace named by --impl."""


def test_conformance(check):
    check()
