"""Adapters: real frameworks' own layers presented as layer namespaces, so the conformance engine can judge them.

Each `reference.adapters.<name>` module is a layer namespace under the contract of
`reference.testing.conformance.protocol` (NumPy arrays in and out, NCHW, torch's constructor arguments and
state_dict keys) whose layers are the framework's own; the adapter only translates layouts, argument
conventions, state_dict keys, RNG and dropout masks. Where the framework lacks a torch argument the adapter
raises NotImplementedError (reported as not implemented), never emulating it with math of its own.

Module-level attributes every adapter defines, read by the engine and the scoreboard:
- `FRAMEWORK`: the framework's name as the scoreboard shows it;
- `EXTRA`: the optional extra that installs it (`pip install "reference[<extra>]"`);
- `UNAVAILABLE`: None, or why the framework cannot run here (not installed: every check is "not implemented"
  with this reason);
- `versions()`: {package: version} of what the adapter runs on;
- `MAX_EXAMPLES` (optional): hypothesis examples per check the scoreboard runs, where the framework is slow.
"""

from __future__ import annotations

ADAPTERS = {  # scoreboard name -> import name of the namespace
    "flax": "reference.adapters.flax",
    "torch_compile": "reference.adapters.torch_compile",
    "onnxruntime": "reference.adapters.onnxruntime",
    "tinygrad": "reference.adapters.tinygrad",
}


def not_installed(framework: str, extra: str, error: BaseException) -> str:
    """The UNAVAILABLE reason of an adapter whose framework failed to import."""
    return (f"{framework} is not installed ({type(error).__name__}: {error}); "
            f"install it with: pip install \"reference[{extra}]\"")
