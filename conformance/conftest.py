"""The conformance engine's pytest plugin, as any user would load it: `--impl MODULE` (default
reference.numpy_nn), `--conformance-report DIR`, `--conformance-xfails FILE`, `--conformance-select GLOB`,
`--conformance-dtypes`, `--conformance-max-examples` (thread pools: see the root conftest)."""

from reference.testing.conformance.plugin import (  # noqa: F401  (hooks of this conftest)
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_generate_tests,
)
