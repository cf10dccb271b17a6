from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from biostruct.errors import InputError
from biostruct.sparsity import MaskedParams, MaskWeight, export_dense, random_masks, split_mw


@settings(max_examples=30, deadline=None)
@given(beta=st.floats(0.0, 4.0), seed=st.integers(0, 1000), scale=st.floats(1e-3, 10.0))
def test_closed_form_split(beta, seed, scale):
    theta = torch.randn(50, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    theta = theta * scale
    m, w = split_mw(theta, beta)
    assert torch.allclose(m * w, theta, rtol=1e-12, atol=1e-12)
    assert torch.allclose(m * m - w * w, torch.full_like(m, beta), atol=1e-9 * (1 + scale**2))
    assert torch.all(m >= 0)


def test_attach_preserves_function_and_masks_stack(tiny):
    x = torch.randn(4, 6)
    before = tiny(x)
    mw = MaskWeight.attach(tiny, ["enc.weight", "dec.weight"], beta=1.0)
    assert torch.allclose(tiny(x), before, atol=1e-6)
    assert mw.scale() == pytest.approx({"enc.weight": 1.0, "dec.weight": 1.0}, abs=1e-5)
    mp = MaskedParams.attach(tiny, ["enc.weight", "dec.weight"])
    mp.set_masks(random_masks(mp.shapes(), 0.5, seed=0))
    m = mp.mask("enc.weight")
    assert torch.all(tiny.enc.weight[~m] == 0)
    assert torch.equal(mw.fold()["enc.weight"], tiny.enc.weight.detach())
    with pytest.raises(InputError, match="before MaskedParams"):
        MaskedParams.attach(tiny, ["scale"])
        MaskWeight.attach(tiny, ["scale"])


def test_rebalance_keeps_product_and_resets_scale(tiny):
    mw = MaskWeight.attach(tiny, ["enc.weight"], beta=1.0)
    opt = torch.optim.SGD(mw.parameters(), lr=0.1, momentum=0.9, weight_decay=0.5)
    for _ in range(20):
        opt.zero_grad()
        tiny(torch.randn(8, 6)).pow(2).mean().backward()
        opt.step()
    assert mw.scale()["enc.weight"] < 0.5  # decay shrank m^2 - w^2
    theta = mw.theta()["enc.weight"]
    m_id = id(mw.mw("enc.weight")[0])
    mw.rebalance(beta=1.0, optimizer=opt)
    assert torch.allclose(mw.theta()["enc.weight"], theta, atol=1e-6)
    assert mw.scale()["enc.weight"] == pytest.approx(1.0, abs=1e-5)
    assert id(mw.mw("enc.weight")[0]) == m_id
    assert all(torch.all(opt.state[p]["momentum_buffer"] == 0) for p in mw.mw("enc.weight"))


def test_masked_reparameterised_state_dict_round_trip(tiny, net_cls):
    mw = MaskWeight.attach(tiny, ["enc.weight", "dec.weight"], beta=0.7)
    mp = MaskedParams.attach(tiny, ["enc.weight", "dec.weight"])
    mp.set_masks(random_masks(mp.shapes(), 0.3, seed=2))
    opt = torch.optim.Adam(tiny.parameters(), lr=0.01)
    mp.sync_optimizer(opt)
    for _ in range(5):
        opt.zero_grad()
        tiny(torch.randn(8, 6)).pow(2).mean().backward()
        opt.step()
    torch.manual_seed(99)
    fresh = net_cls()
    MaskWeight.attach(fresh, ["enc.weight", "dec.weight"])
    mp2 = MaskedParams.attach(fresh, ["enc.weight", "dec.weight"])
    fresh.load_state_dict(tiny.state_dict(), strict=True)
    x = torch.randn(5, 6)
    assert torch.equal(fresh(x), tiny(x))
    for f in mp.fqns:
        assert torch.equal(mp2.mask(f), mp.mask(f))
    assert torch.allclose(
        torch.tensor(list(MaskWeight(fresh, mw.fqns).scale().values())),
        torch.tensor(list(mw.scale().values())),
    )
    # Dense export loads into an unparametrized copy.
    plain = net_cls()
    plain.load_state_dict(export_dense(tiny), strict=True)
    assert torch.allclose(plain(x), tiny(x))
    # Folding back to plain weights keeps the function and the zeros.
    mask = mp.mask("enc.weight").clone()
    out = tiny(x)
    mw.merge()
    assert "enc.weight" in dict(tiny.named_parameters())
    assert torch.all(tiny.enc.weight[~mask] == 0)
    assert torch.allclose(tiny(x), out)


def test_masked_params_merge_of_mw_gives_parameters(tiny):
    MaskWeight.attach(tiny, ["dec.weight"])
    mp = MaskedParams.attach(tiny, ["dec.weight"])
    mp.set_masks(random_masks(mp.shapes(), 0.5, seed=0))
    mask = mp.mask("dec.weight").clone()
    mp.merge()
    assert isinstance(tiny.dec.weight, torch.nn.Parameter)
    assert torch.all(tiny.dec.weight[~mask] == 0)


def test_load_dense_state_dict_into_masked_mw_model(tiny, net_cls):
    from biostruct.sparsity import load_dense_state_dict

    torch.manual_seed(5)
    source = net_cls()
    MaskWeight.attach(tiny, ["enc.weight"], beta=0.5)
    mp = MaskedParams.attach(tiny, ["enc.weight", "dec.weight"])
    mp.set_masks(random_masks(mp.shapes(), 0.5, seed=8))
    load_dense_state_dict(tiny, source.state_dict())
    for f, (mod, name) in {
        "enc.weight": ("enc", "weight"),
        "dec.weight": ("dec", "weight"),
    }.items():
        expected = getattr(getattr(source, mod), name) * mp.mask(f)
        assert torch.allclose(mp.weight(f), expected, atol=1e-6)
    m, w = MaskWeight(tiny, ["enc.weight"]).mw("enc.weight")
    assert torch.allclose(m * m - w * w, torch.full_like(m, 0.5), atol=1e-5)
    with pytest.raises(InputError, match="unknown keys"):
        load_dense_state_dict(tiny, {**source.state_dict(), "extra": torch.zeros(1)})
