"""Test helpers shared by tests/ and conformance/: hypothesis strategies and a finite-difference gradient check.

`strategies` is the single source of random layer configurations (valid and invalid); `gradcheck` compares
a module's manual backward with central differences in float64; `compare` holds conformance's closeness
checks. Importing `strategies` needs hypothesis.
"""
