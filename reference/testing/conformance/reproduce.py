"""Copy-pasteable reproductions: `reproduce` reruns one case a failure printed (the snippet is
`engine.reproduction`)."""

from __future__ import annotations

from types import ModuleType


def reproduce(namespace: str | ModuleType, check_id: str, **arguments) -> None:
    """Rerun one case (the configuration and seed a failure printed) of the check `check_id` of `namespace`."""
    from .engine import ALL_TIERS, DEVICES, DTYPES, Check, checks, reproduction
    from .harness import strict_torch_numerics
    from .namespace import load_namespace, namespace_name

    name = namespace_name(namespace)
    found: dict[str, Check] = {check.id: check for check in checks(name, ALL_TIERS, DTYPES, DEVICES)}
    if check_id not in found:
        raise KeyError(f"no check {check_id!r}; ids look like 'op-Conv2d-float32-cpu' or 'model-tiny_cnn[train]-"
                       "float64-cpu'")
    with strict_torch_numerics():
        found[check_id].example(load_namespace(name), lambda **shown: reproduction(name, check_id, **shown),
                                **arguments)
