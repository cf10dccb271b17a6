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


def test_gradient_masked_also_under_autograd_grad(tiny):
    # torchdiffeq's adjoint computes parameter gradients with torch.autograd.grad.
    mp = MaskedParams.attach(tiny, ["enc.weight"])
    mp.set_masks(random_masks(mp.shapes(), 0.3, seed=1))
    loss = tiny(torch.randn(4, 6)).sum()
    (g,) = torch.autograd.grad(loss, [tiny.enc.weight])
    assert torch.all(g[~mp.mask("enc.weight")] == 0)
    assert torch.any(g[mp.mask("enc.weight")] != 0)


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
