"""The torch.compile adapter (reference.adapters.torch_compile): a few of its conformance checks, one case each, and
its own translations: every call runs inductor-compiled code (past dynamo's recompile limit too), the dropout mask
is the one the compiled layer applied, parameters are views of the torch tensors, optimizer state is torch's."""

from __future__ import annotations

import numpy as np
import pytest

tc = pytest.importorskip("reference.adapters.torch_compile")
if tc.UNAVAILABLE:
    pytest.skip(tc.UNAVAILABLE, allow_module_level=True)

import torch  # noqa: E402

from reference.testing.conformance import checks  # noqa: E402
from reference.testing.strategies import LayerConfig  # noqa: E402

CONV = LayerConfig("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1, bias=True),
                   (2, 2, 5, 6), (2, 3, 3, 3))
BATCH_NORM = LayerConfig("BatchNorm2d", dict(num_features=3, eps=1e-5, momentum=0.1), (2, 3, 3, 2), (2, 3, 3, 2))


def run_check(check_id: str, **arguments) -> None:
    """One case of the adapter's check `check_id` (the engine's own runner and comparison)."""
    found = {check.id: check for check in checks(tc, dtypes=("float64", "float32"), devices=("cpu",))}
    found[check_id].example(tc, lambda **shown: "", **arguments)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conv2d_and_training_batch_norm_match_eager_torch(dtype):
    run_check(f"op-Conv2d-{dtype}-cpu", config=CONV, seed=0)
    run_check(f"op-BatchNorm2d[train]-{dtype}-cpu", config=BATCH_NORM, seed=0)


def test_tiny_cnn_one_step_and_a_short_sgd_trajectory_match_eager_torch():
    run_check("model-tiny_cnn[train]-float64-cpu", seed=0)
    run_check("trajectory-tiny_cnn[sgd]-float64-cpu", seed=0, steps=2)


def test_every_call_runs_inductor_code_past_dynamos_recompile_limit():
    """With a recompile limit of 2, plain torch.compile runs a third Hardtanh configuration eagerly (the trap);
    the adapter compiles all of them, and each output comes from AOTAutograd's compiled function."""
    from torch._dynamo.utils import counters

    x = np.linspace(-2, 2, 12).reshape(3, 4)
    bounds = [(-1.0 - k / 8, 1.0 + k / 8) for k in range(3)]
    with torch._dynamo.config.patch(recompile_limit=2):
        eager = [torch.compile(torch.nn.Hardtanh(*b))(torch.from_numpy(x).requires_grad_()) for b in bounds]
        assert [type(y.grad_fn).__name__ for y in eager][-1] == "HardtanhBackward0"  # the silent eager fallback
        before = sum(counters["inductor"].values())
        for low, high in bounds:
            layer = tc.Hardtanh(low, high).to(np.float64)
            out = layer(x)
            assert type(layer._last[1].grad_fn).__name__ == "CompiledFunctionBackward"
            np.testing.assert_array_equal(out, np.clip(x, low, high))
            np.testing.assert_array_equal(layer.backward(np.ones_like(x)), ((x > low) & (x < high)).astype(float))
        assert sum(counters["inductor"].values()) > before  # inductor compiled (or loaded from its cache) graphs
    assert not tc.ran_compiled(torch.nn.functional.relu(torch.ones(2, requires_grad=True)), torch.ones(2))


def test_dropout_mask_is_the_mask_the_compiled_layer_applied():
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32)
    dropout, dropout2d = tc.Dropout(0.5), tc.Dropout2d(0.5)
    np.testing.assert_array_equal(dropout(x), x * dropout.mask)
    assert set(np.unique(dropout.mask)) <= {0.0, 2.0}
    np.testing.assert_array_equal(dropout2d(x), x * dropout2d.mask)
    assert dropout2d.mask.shape == (4, 3, 1, 1)
    assert dropout.eval().mask is None


def test_a_compiled_model_refuses_training_with_dropout_but_not_eval_or_p_zero():
    x = np.ones((2, 4), np.float32)
    model = tc.Sequential(tc.Linear(4, 3), tc.Dropout(0.5))
    with pytest.raises(NotImplementedError, match="masks cannot be read back"):
        model(x)
    assert model.eval()(x).shape == (2, 3)
    model[1].p = 0.0
    assert model.train()(x).shape == (2, 3)


def test_a_graph_dynamo_cannot_capture_whole_is_not_implemented():
    layer = tc.BatchNorm2d(2, momentum=None)  # float(num_batches_tracked): a data-dependent Python float
    with pytest.raises(NotImplementedError, match="cannot capture BatchNorm2d in training mode"):
        layer(np.ones((2, 2, 2, 2), np.float32))


def test_parameters_are_views_of_the_torch_tensors_and_keys_are_the_zoo_twins():
    from reference import zoo

    model = zoo.spec("tiny_resnet").architecture(tc)
    assert list(model.state_dict()) == list(zoo.build("tiny_resnet", "torch").state_dict())
    name, param = next(model.named_parameters())
    param.data = np.zeros(param.shape, np.float32)
    assert not model.torch.state_dict()[name].any()
    param.data -= 1.0  # in place on the view
    assert (model.torch.state_dict()[name] == -1).all()


def test_optimizers_are_torch_optims_over_plain_arrays_with_torchs_state():
    class Param:
        def __init__(self, data):
            self.data, self.grad = data, None

    params = [Param(np.ones(3)), Param(np.ones(2))]
    reference = [torch.nn.Parameter(torch.ones(3, dtype=torch.float64)),
                 torch.nn.Parameter(torch.ones(2, dtype=torch.float64))]
    ours, theirs = tc.SGD(params, lr=0.1, momentum=0.9), torch.optim.SGD(reference, lr=0.1, momentum=0.9)
    schedule, torch_schedule = tc.StepLR(ours, step_size=1, gamma=0.5), \
        torch.optim.lr_scheduler.StepLR(theirs, step_size=1, gamma=0.5)
    for step in range(3):
        for p, t, g in zip(params, reference, (np.arange(3.0), np.full(2, step + 1.0)), strict=True):
            p.grad, t.grad = g.copy(), torch.from_numpy(g.copy())
        ours.step(), theirs.step(), schedule.step(), torch_schedule.step()
    for i, (p, t) in enumerate(zip(params, reference, strict=True)):
        np.testing.assert_array_equal(p.data, t.detach().numpy())
        np.testing.assert_array_equal(ours.state[i]["momentum_buffer"], theirs.state[t]["momentum_buffer"].numpy())
    assert ours.lr == theirs.param_groups[0]["lr"] == 0.1 * 0.5**3
