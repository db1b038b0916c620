"""Copy-pasteable reproductions: the snippet a failure prints, and the function it calls."""

from __future__ import annotations

from types import ModuleType


def reproduction(namespace: str, check_id: str, **arguments) -> str:
    """Python that reruns one case of one check against the same namespace."""
    shown = "".join(f", {key}={value!r}" for key, value in arguments.items())
    imports = "from reference.testing.conformance import reproduce\n"
    if "LayerConfig(" in shown:
        imports += "from reference.testing.strategies import LayerConfig\n"
    return f"{imports}reproduce({namespace!r}, {check_id!r}{shown})"


def reproduce(namespace: str | ModuleType, check_id: str, **arguments) -> None:
    """Rerun one case (the configuration and seed a failure printed) of the check `check_id` of `namespace`."""
    from .engine import ALL_TIERS, DEVICES, DTYPES, Check, checks
    from .namespace import load_namespace, namespace_name

    name = namespace_name(namespace)
    found: dict[str, Check] = {check.id: check for check in checks(name, ALL_TIERS, DTYPES, DEVICES)}
    if check_id not in found:
        raise KeyError(f"no check {check_id!r}; ids look like 'op-Conv2d-float32-cpu' or 'model-tiny_cnn[train]-"
                       "float64-cpu'")
    check = found[check_id]
    from .harness import strict_torch_numerics

    with strict_torch_numerics():
        check.example(load_namespace(name), lambda **shown: reproduction(name, check_id, **shown), **arguments)
