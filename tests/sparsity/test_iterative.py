"""IMP and LRR end to end on a small teacher-student MLP, with sign tracking."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from biostruct.sparsity import (
    IterativePlan,
    Magnitude,
    MaskedParams,
    SignTracker,
    Snapshots,
    from_torch_prune,
    global_density,
    prune_step,
    report_table,
    restart,
    select,
    sparsity_report,
    to_torch_prune,
)


def _data():
    g = torch.Generator().manual_seed(0)
    teacher = nn.Sequential(nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 2))
    with torch.no_grad():
        for p in teacher.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
        teacher[0].weight.mul_(torch.rand(8, 10, generator=g) < 0.3)  # sparse teacher
    x = torch.randn(300, 10, generator=g)
    with torch.no_grad():
        y = teacher(x)
    return x, y


def _train(model, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        opt.step()
    return float(loss.detach())


@pytest.mark.parametrize("rewind", ["lr", "init", ("epoch", 1)])
def test_iterative_pruning_end_to_end(rewind):
    x, y = _data()
    torch.manual_seed(1)
    student = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 2))
    mp = MaskedParams.attach(student, select(student))
    plan = IterativePlan(target_density=0.2, prune_fraction=0.4, rewind=rewind)
    snaps, signs = Snapshots(), SignTracker(mp)
    snaps.take("init", student)
    signs.snapshot("init")

    def make_opt():
        return torch.optim.Adam(student.parameters(), lr=0.02)

    opt, _ = restart(make_opt, masked=mp)
    loss0 = float((student(x) - y).pow(2).mean().detach())
    _train(student, opt, x, y, 50)
    snaps.take("epoch1", student)
    loss = _train(student, opt, x, y, 250)
    losses, densities = [loss], []
    while not plan.done():
        d = plan.step()
        signs.snapshot(f"before{plan.round}")
        prune_step(mp, Magnitude(), density=d, scope="global")
        densities.append(mp.density())
        if plan.rewind_tag is not None:
            snaps.restore(plan.rewind_tag, student)
        opt, _ = restart(make_opt, masked=mp)
        losses.append(_train(student, opt, x, y, 300))
        for f in mp.fqns:
            assert torch.all(mp.weight(f)[~mp.mask(f)] == 0)
    assert densities == pytest.approx(plan.densities(), abs=2e-3)
    assert global_density(sparsity_report(mp)) == pytest.approx(0.2, abs=2e-3)
    assert losses[-1] < 0.05 * loss0  # the sparse student still fits the sparse teacher
    flips = signs.flips(since="init")
    assert sum(flips.values()) > 0  # training from a random init flips signs
    report = sparsity_report(mp, sign_flips=flips)
    assert sum(r.sign_flips for r in report) == sum(flips.values())
    assert "total" in report_table(report)
    if rewind == "init":
        # IMP: kept weights restart from their initial values before the last retraining.
        first = snaps.model_state("init")["0.weight"]
        assert first.shape == mp.weight("0.weight").shape


def test_torch_prune_interop_round_trip():
    import torch.nn.utils.prune as tprune

    model = nn.Sequential(nn.Linear(5, 6), nn.Linear(6, 2))
    tprune.l1_unstructured(model[0], "weight", amount=0.5)
    mask = model[0].weight_mask.bool().clone()
    mp = from_torch_prune(model)
    assert mp.fqns == ["0.weight"] and torch.equal(mp.mask("0.weight"), mask)
    assert "0.weight_mask" in model.state_dict() and "0.weight_orig" not in model.state_dict()
    back = to_torch_prune(mp)
    assert torch.equal(back[0].weight_mask.bool(), mask)
    assert from_torch_prune(nn.Linear(2, 2)) is None
