from __future__ import annotations

import pytest
import torch

from biostruct.errors import InputError
from biostruct.sparsity import (
    IterativePlan,
    Magnitude,
    MaskedParams,
    SignTracker,
    Snapshots,
    prune_step,
)


def test_plan_densities_and_state():
    plan = IterativePlan(0.3, prune_fraction=0.2, rewind="init")
    ds = plan.densities()
    assert ds[:3] == pytest.approx([0.8, 0.64, 0.512])
    assert ds[-1] == 0.3 and len(plan) == 6
    assert plan.rewind_tag == "init"
    assert IterativePlan(0.5, rewind=("epoch", 2)).rewind_tag == "epoch2"
    assert IterativePlan(0.5).rewind_tag is None
    plan.step()
    plan.step()
    other = IterativePlan(0.9)
    other.load_state_dict(plan.state_dict())
    assert other.round == 2 and other.step() == pytest.approx(0.512)
    with pytest.raises(InputError, match="rewind"):
        IterativePlan(0.5, rewind="late")


def test_snapshot_restore_keeps_current_masks(tiny):
    mp = MaskedParams.attach(tiny, ["enc.weight", "dec.weight"])
    snaps = Snapshots()
    snaps.take("init", tiny)
    init_w = tiny.enc.weight.detach().clone()
    with torch.no_grad():
        tiny.enc.weight.add_(1.0)
    prune_step(mp, Magnitude(), density=0.5)
    snaps.restore("init", tiny)
    m = mp.mask("enc.weight")
    assert float(m.float().mean()) == 0.5  # masks survive the rewind
    assert torch.equal(tiny.enc.weight[m], init_w[m])
    assert torch.all(tiny.enc.weight[~m] == 0)
    snaps.restore("init", tiny, exclude_masks=False)
    assert bool(mp.mask("enc.weight").all())
    with pytest.raises(InputError, match="no snapshot"):
        snaps.restore("epoch3", tiny)


def test_sign_tracker_counts_flips(tiny):
    mp = MaskedParams.attach(tiny, ["enc.weight"])
    tr = SignTracker(mp)
    tr.snapshot("a")
    with torch.no_grad():
        tiny.enc.weight[0, :4] = -tiny.enc.weight[0, :4]
        tiny.enc.weight[1, 0] = 0.0  # a zero is not a flip
    assert tr.flips(since="a") == {"enc.weight": 4}
    tr.snapshot("b")
    assert tr.flips("a", "b") == {"enc.weight": 4} and tr.total_flips("b") == 0
    model_tr = SignTracker(tiny)
    model_tr.snapshot("x")
    assert set(model_tr.flips("x")) == {"enc.weight", "dec.weight", "scale"}
