"""Device agreement: torch on CUDA against torch on the CPU, op by op and model by model.

Inputs are generated once on the CPU (NumPy) and moved to the device, so both devices see bitwise-identical
inputs; TF32 is off and cuDNN deterministic. The implementation-against-CUDA checks themselves are the "cuda"
cases of test_ops.py, test_models.py and test_trajectories.py.
"""

CONFORMANCE_TIERS = ("device",)


def test_torch_cuda_matches_torch_cpu(check):
    check()
