from __future__ import annotations

import pytest
import torch
from torch import nn

from biostruct.errors import InputError
from biostruct.sparsity import (
    STRATEGIES,
    MaskedParams,
    cycle_lengths,
    sculpt,
    select,
    triangular,
)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_cycle_lengths_sum_and_shape(strategy):
    lengths = cycle_lengths(100, 6, strategy)
    assert sum(lengths) == 100 and len(lengths) == 6 and min(lengths) >= 1
    if strategy == "constant":
        assert max(lengths) - min(lengths) <= 1
    if strategy == "linear_increase":
        assert lengths == sorted(lengths) and lengths[0] < lengths[-1]
    if strategy == "exponential_decrease":
        assert lengths == sorted(lengths, reverse=True)
    if strategy == "cyclic_peak":
        assert max(lengths) in lengths[2:4]


def test_cycle_lengths_invalid():
    with pytest.raises(InputError, match="n_cycles"):
        cycle_lengths(3, 5)
    with pytest.raises(InputError, match="strategy"):
        cycle_lengths(10, 2, "zigzag")


def test_triangular_shape():
    shape = triangular(warmup_frac=0.2, start=0.2)
    vals = [shape(s, 10) for s in range(11)]
    assert vals[0] == pytest.approx(0.2)
    assert vals[1] == pytest.approx(0.6)
    assert vals[2] == pytest.approx(1.0)
    assert vals[6] == pytest.approx(0.5)
    assert vals[10] == pytest.approx(0.0)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, shape.lambda_for(10))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.3)


def test_sculpt_recipe_end_to_end():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    x = torch.randn(256, 8)
    with torch.no_grad():
        y = teacher(x)
    student = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
    mp = MaskedParams.attach(student, select(student))
    shape = triangular()
    lrs = []

    def cycle(c):
        opt = torch.optim.SGD(student.parameters(), lr=0.1, momentum=0.9)
        mp.sync_optimizer(opt)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, shape.lambda_for(60))
        with torch.no_grad():
            start = float((student(x) - y).pow(2).mean())
        for _ in range(60):
            opt.zero_grad()
            loss = (student(x) - y).pow(2).mean()
            loss.backward()
            opt.step()
            sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        return start, float(loss.detach())

    # Local scope: global magnitude on this tiny net prunes the whole output layer (collapse).
    hist = sculpt(mp, 0.8, 0.3, n_cycles=3, train_cycle_fn=cycle, scope="local", seed=1)
    assert [h["cycle"] for h in hist] == [0, 1, 2, 3]
    # Realised density: per-layer rounding of 0.8 * numel.
    assert [h["density"] for h in hist[:3]] == [pytest.approx(0.8, abs=5e-3)] * 3
    for m in mp.masks().values():
        assert int(m.sum()) == round(0.3 * m.numel())
    ends = [h["result"][1] for h in hist]
    assert ends[1] < ends[0]  # a second cycle still improves the sparse model
    start_last, end_last = hist[-1]["result"]
    assert start_last > ends[2]  # the single magnitude prune costs accuracy ...
    assert end_last < 0.5 * start_last  # ... which the final cycle recovers in good part
    assert end_last < 0.1 * hist[0]["result"][0]
    assert lrs == [pytest.approx(0.0)] * 4  # every cycle ends its triangle
    for f in mp.fqns:
        assert torch.all(mp.weight(f)[~mp.mask(f)] == 0)
