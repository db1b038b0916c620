"""Testing tools: the conformance engine for any NumPy layer namespace, hypothesis strategies, comparisons.

`parametrize_with_conformance(module)` runs the conformance checks on a user's layers in their own pytest
suite (see `conformance`); `strategies` is the single source of random layer configurations (valid and
invalid); `gradcheck` compares a module's manual backward with central differences in float64; `compare`
holds the closeness checks. Importing `strategies` needs hypothesis; `conformance` needs torch and pytest.
"""


def __getattr__(name: str):
    if name == "parametrize_with_conformance":  # imported on first use: it brings torch, pytest and hypothesis
        from .conformance import parametrize_with_conformance

        return parametrize_with_conformance
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["parametrize_with_conformance"]
