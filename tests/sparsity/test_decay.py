from __future__ import annotations

import math

import pytest
import torch

from biostruct.errors import InputError
from biostruct.sparsity import (
    MaskWeight,
    PilotController,
    WeightDecaySchedule,
    constant,
    geometric,
    harmonic,
    switch_off,
)


def test_presets():
    assert [switch_off(0.1, 2)(t) for t in range(4)] == [0.1, 0.1, 0.0, 0.0]
    assert constant(0.3)(100) == 0.3
    assert harmonic(1.0)(3) == 0.25
    assert geometric(2.0, 0.5)(3) == 0.25
    with pytest.raises(InputError, match="p"):
        geometric(1.0, 1.5)


def test_schedule_writes_groups_and_tracks_integral():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "weight_decay": 0.7}], lr=0.1)
    sched = WeightDecaySchedule(opt, switch_off(0.2, at=3), groups=[0])
    values = [sched.step() for _ in range(5)]
    assert values == [0.2, 0.2, 0.2, 0.0, 0.0]
    assert opt.param_groups[1]["weight_decay"] == 0.7  # untouched group
    assert sched.cumulative == pytest.approx(0.6)
    assert sched.integral == pytest.approx(0.06)
    other = WeightDecaySchedule(opt, constant(0.0))
    other.load_state_dict(sched.state_dict())
    assert other.t == 5 and other.integral == pytest.approx(0.06)


def test_scale_shrinks_by_the_documented_factor():
    # Zero loss gradient: each SGD step multiplies m^2 - w^2 by exactly (1 - lr * lam)^2 in torch
    # units (lam = 2 * alpha in the papers' alpha * ||p||^2 convention).
    model = torch.nn.Linear(4, 3, bias=False)
    mw = MaskWeight.attach(model, ["weight"], beta=1.0)
    opt = torch.optim.SGD(mw.parameters(), lr=0.1)
    sched = WeightDecaySchedule(opt, harmonic(0.5))
    for _ in range(30):
        sched.step()
        opt.zero_grad()
        (0.0 * model.weight.sum()).backward()
        opt.step()
    assert mw.scale()["weight"] == pytest.approx(sched.predicted_scale_factor, rel=1e-4)
    # Continuous-time approximation a_t = a_0 exp(-2 * integral) holds to O(lr * lam).
    assert math.exp(-2 * sched.integral) == pytest.approx(sched.predicted_scale_factor, rel=0.05)


def test_pilot_controller_rule():
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = WeightDecaySchedule(opt, constant(0.0))
    ctl = PilotController(sched, delta=2.0, l1_budget=10.0, total_epochs=6, alpha_init=1e-3)
    sched.step()
    assert opt.param_groups[0]["weight_decay"] == pytest.approx(2e-3)  # torch = 2 * alpha
    assert ctl.epoch_end(train_acc=0.5, l1_norm=20.0) == pytest.approx(2e-3)  # grow
    assert ctl.epoch_end(train_acc=0.4, l1_norm=20.0) == pytest.approx(1e-3)  # acc dropped
    assert ctl.epoch_end(train_acc=0.6, l1_norm=5.0) == pytest.approx(5e-4)  # under budget
    # Epoch 4 > T / 2: no more growth even though healthy and over budget.
    assert ctl.epoch_end(train_acc=0.7, l1_norm=20.0) == pytest.approx(2.5e-4)
    sched.step()
    assert opt.param_groups[0]["weight_decay"] == pytest.approx(2 * ctl.alpha)
    assert [h["grew"] for h in ctl.history] == [1.0, 0.0, 0.0, 0.0]
    with pytest.raises(InputError, match="delta"):
        PilotController(sched, delta=1.0, l1_budget=1.0, total_epochs=3)
