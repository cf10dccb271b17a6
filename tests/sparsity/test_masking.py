from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sparsity_helpers import TinyNet
from torch import nn

from biostruct.errors import InputError
from biostruct.sparsity import (
    Magnitude,
    MaskedParams,
    export_dense,
    mask_state_keys,
    prune_step,
    random_masks,
)


def _train(model, opt, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(16, 6, generator=g)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


def test_masks_are_persistent_buffers_in_state_dict(tiny):
    mp = MaskedParams.attach(tiny, ["enc.weight", "dec.weight"])
    sd = tiny.state_dict()
    assert sd["enc.weight_mask"].dtype == torch.bool
    assert mask_state_keys(tiny) == {"enc.weight_mask", "dec.weight_mask"}
    assert mp.mode("enc.weight") == "zero"
    assert mp.shapes() == {"enc.weight": (10, 6), "dec.weight": (3, 10)}


OPTIMIZERS = {
    "adam_wd": lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=0.1),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1),
    "sgd_mom_wd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.1),
}


@settings(max_examples=15, deadline=None)
@given(
    density=st.floats(0.05, 0.95),
    opt_name=st.sampled_from(sorted(OPTIMIZERS)),
    seed=st.integers(0, 10_000),
    warm=st.integers(0, 3),
)
def test_pruned_weights_never_resurrect(density, opt_name, seed, warm):
    torch.manual_seed(seed)
    model = TinyNet()
    mp = MaskedParams.attach(model, ["enc.weight", "dec.weight", "scale"])
    opt = OPTIMIZERS[opt_name](model.parameters())
    mp.sync_optimizer(opt)
    # Warm the optimizer state on the dense model first, then prune: stale moments must go.
    _train(model, opt, warm, seed)
    prune_step(mp, Magnitude(), density=density)
    masks = {f: m.clone() for f, m in mp.masks().items()}
    for f in masks:
        state = opt.state.get(dict(model.named_parameters())[f], {})
        for v in state.values():
            if torch.is_tensor(v) and v.shape == masks[f].shape:
                assert torch.all(v[~masks[f]] == 0), "optimizer state of pruned entries kept"
    _train(model, opt, 5, seed + 1)
    for f, m in masks.items():
        w = mp.weight(f)
        assert torch.all(w[~m] == 0)
        assert torch.equal(mp.mask(f), m)
        grad = dict(model.named_parameters())[f].grad
        assert torch.all(grad[~m] == 0)


class _Field(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 5)

    def forward(self, t, y):
        return torch.tanh(self.lin(y)) - y


@pytest.mark.parametrize("adjoint", [False, True])
def test_masks_hold_inside_torchdiffeq_solves(adjoint):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    torch.manual_seed(0)
    field = _Field()
    mp = MaskedParams.attach(field, ["lin.weight"])
    mp.set_masks(random_masks(mp.shapes(), 0.4, seed=1))
    opt = torch.optim.Adam(field.parameters(), lr=0.05, weight_decay=0.01)
    mp.sync_optimizer(opt)
    solve = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
    y0, ts = torch.randn(8, 5), torch.linspace(0, 1, 4)
    for _ in range(3):
        opt.zero_grad()
        with mp.cached():
            out = solve(field, y0, ts, method="rk4", options={"step_size": 0.25})
        out.pow(2).mean().backward()
        mask = mp.mask("lin.weight")
        assert torch.all(field.lin.weight.grad[~mask] == 0)
        assert torch.any(field.lin.weight.grad[mask] != 0)
        opt.step()
        assert torch.all(field.lin.weight[~mask] == 0)


def test_manual_gradients_cannot_resurrect_after_step(tiny):
    # Gradients from torch.autograd.grad are not masked; assigning them to .grad by hand still
    # cannot move a pruned weight because the step post-hook re-applies the mask.
    mp = MaskedParams.attach(tiny, ["enc.weight"])
    mp.set_masks(random_masks(mp.shapes(), 0.3, seed=1))
    opt = torch.optim.SGD(tiny.parameters(), lr=0.1)
    mp.sync_optimizer(opt)
    (g,) = torch.autograd.grad(tiny(torch.randn(4, 6)).sum(), [tiny.enc.weight])
    tiny.enc.weight.grad = g
    opt.step()
    assert torch.all(tiny.enc.weight[~mp.mask("enc.weight")] == 0)


def test_set_masks_validates(tiny):
    mp = MaskedParams.attach(tiny, ["enc.weight"])
    with pytest.raises(InputError, match="shape"):
        mp.set_masks({"enc.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(InputError, match="0/1"):
        mp.set_masks({"enc.weight": torch.full((10, 6), 0.5)})
    with pytest.raises(InputError, match="not masked"):
        mp.mask("dec.weight")


def test_state_dict_round_trip_into_fresh_model(tiny, net_cls):
    mp = MaskedParams.attach(tiny, ["enc.weight", "dec.weight"])
    mp.set_masks(random_masks(mp.shapes(), 0.4, seed=3))
    fresh = net_cls()
    mp2 = MaskedParams.attach(fresh, ["enc.weight", "dec.weight"])
    fresh.load_state_dict(tiny.state_dict())
    for f in mp.fqns:
        assert torch.equal(mp2.mask(f), mp.mask(f))
        assert torch.equal(mp2.weight(f), mp.weight(f))
    x = torch.randn(5, 6)
    assert torch.allclose(fresh(x), tiny(x))
    assert mp2.state_dict().keys() == {"enc.weight", "dec.weight"}


def test_export_dense_and_merge(tiny, net_cls):
    mp = MaskedParams.attach(tiny, ["enc.weight", "dec.weight"])
    mp.set_masks(random_masks(mp.shapes(), 0.5, seed=4))
    x = torch.randn(7, 6)
    expected = tiny(x)
    plain = net_cls()
    plain.load_state_dict(mp.export_dense(), strict=True)
    assert torch.allclose(plain(x), expected)
    mask = mp.mask("enc.weight").clone()
    model = mp.merge()
    assert "enc.weight_mask" not in model.state_dict()
    assert torch.all(model.enc.weight[~mask] == 0)
    assert torch.allclose(model(x), expected)


def test_reattach_reuses_masks(tiny):
    mp = MaskedParams.attach(tiny, ["enc.weight"])
    mp.set_masks(random_masks(mp.shapes(), 0.5, seed=5))
    again = MaskedParams.attach(tiny, ["enc.weight"])
    assert torch.equal(again.mask("enc.weight"), mp.mask("enc.weight"))
    assert mp.density() == pytest.approx(0.5)


def test_masked_parametrized_tensor_uses_stacked_parametrization(tiny):
    from torch.nn.utils import parametrize

    class Double(nn.Module):
        def forward(self, x):
            return 2 * x

    parametrize.register_parametrization(tiny.dec, "weight", Double())
    mp = MaskedParams.attach(tiny, ["dec.weight"])
    assert mp.mode("dec.weight") == "parametrize"
    mp.set_masks(random_masks(mp.shapes(), 0.3, seed=6))
    with mp.cached():
        w = tiny.dec.weight
    assert torch.all(w[~mp.mask("dec.weight")] == 0)
    assert mask_state_keys(tiny) == {"dec.parametrizations.weight.1.mask"}
    dense = export_dense(tiny)
    assert torch.equal(dense["dec.weight"], w)


def test_float_mask_cache_follows_load_state_dict_and_device_moves(tiny, net_cls):
    mp = MaskedParams.attach(tiny, ["enc.weight"])
    opt = torch.optim.SGD(tiny.parameters(), lr=0.1)
    mp.sync_optimizer(opt)
    opt.zero_grad()
    tiny(torch.randn(3, 6)).sum().backward()  # fills the float-mask cache (all ones)
    other = net_cls()
    mp_other = MaskedParams.attach(other, ["enc.weight"])
    mp_other.set_masks(random_masks(mp_other.shapes(), 0.25, seed=7))
    tiny.load_state_dict(other.state_dict())  # in-place write into the bool buffer
    mask = mp.mask("enc.weight")
    assert torch.equal(mask, mp_other.mask("enc.weight"))
    opt.zero_grad()
    tiny(torch.randn(3, 6)).sum().backward()
    assert torch.all(tiny.enc.weight.grad[~mask] == 0)
    tiny.to(torch.float64)
    opt = torch.optim.SGD(tiny.parameters(), lr=0.1)
    mp.sync_optimizer(opt)
    opt.zero_grad()
    tiny(torch.randn(3, 6, dtype=torch.float64)).sum().backward()
    opt.step()
    assert tiny.enc.weight.grad.dtype == torch.float64
    assert torch.all(tiny.enc.weight[~mask] == 0)


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_zero_stays_zero_without_the_post_step_safety_net(opt_name):
    torch.manual_seed(3)
    model = TinyNet()
    mp = MaskedParams.attach(model, ["enc.weight", "dec.weight"])
    opt = OPTIMIZERS[opt_name](model.parameters())
    mp.sync_optimizer(opt, reapply=False)
    _train(model, opt, 2)
    prune_step(mp, Magnitude(), density=0.3)
    _train(model, opt, 5)
    for f in mp.fqns:
        assert torch.all(mp.weight(f)[~mp.mask(f)] == 0)
