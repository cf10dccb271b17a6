"""Implicit bias of m*w with decaying weight decay ("Mask in the Mirror", Jacobs & Burkholz).

Under-determined sparse linear regression, several seeds batched: d = 40 features, n = 20
samples, a 5-sparse ground truth. Plain gradient descent on x from 0 converges to the minimum-L2
norm interpolant (computed here with the pseudo-inverse). Gradient descent on x = m * w from the
closed-form initialisation (m**2 - w**2 = beta = 1, an L2-like geometry) with a geometrically
decaying weight decay on m and w shrinks the scale towards 0, i.e. towards an L1-like implicit
bias, and recovers the sparse vector.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from biostruct.sparsity import MaskWeight
from biostruct.sparsity.decay import WeightDecaySchedule, constant, geometric

SEEDS, D, N, K = 8, 40, 20, 5


class Coefficients(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.x = nn.Parameter(torch.zeros(SEEDS, D, dtype=torch.float64))


def _problem():
    g = torch.Generator().manual_seed(1234)
    a = torch.randn(SEEDS, N, D, generator=g, dtype=torch.float64) / math.sqrt(N)
    truth = torch.zeros(SEEDS, D, dtype=torch.float64)
    for s in range(SEEDS):
        idx = torch.randperm(D, generator=g)[:K]
        sign = torch.randn(K, generator=g, dtype=torch.float64).sign()
        truth[s, idx] = sign * (1 + torch.rand(K, generator=g, dtype=torch.float64))
    y = torch.einsum("snd,sd->sn", a, truth)
    return a, truth, y


def _fit_mw(a, y, decay, steps=5000, lr=0.08):
    model = Coefficients()
    mw = MaskWeight.attach(model, ["x"], beta=1.0)
    opt = torch.optim.SGD(mw.parameters(), lr=lr)
    schedule = WeightDecaySchedule(opt, decay)
    for _ in range(steps):
        schedule.step()
        opt.zero_grad()
        resid = torch.einsum("snd,sd->sn", a, model.x) - y
        (0.5 * resid.pow(2).sum()).backward()
        opt.step()
    return model.x.detach(), mw, schedule, float(resid.detach().abs().max())


def _rel_err(x, truth):
    return (x - truth).norm(dim=1) / truth.norm(dim=1)


def test_decaying_weight_decay_on_mw_recovers_sparse_truth():
    a, truth, y = _problem()
    min_norm = torch.linalg.pinv(a) @ y.unsqueeze(-1)
    err_l2 = _rel_err(min_norm.squeeze(-1), truth)
    x, mw, schedule, resid = _fit_mw(a, y, geometric(0.3, 0.999))
    err_mw = _rel_err(x, truth)
    ratio = err_mw / err_l2
    # Measured (torch 2.13 CPU, float64, these 8 problems): min-norm relative errors 0.62-0.82;
    # m*w errors 0.0015-0.045; ratios median 0.011, max 0.057 (basis pursuit, i.e. the L1
    # interpolant, recovers all 8 exactly, checked with scipy's linprog). Bounds: median < 0.05
    # and max < 0.2, i.e. >= 3.5x margin over the measurement, while an L2-like bias gives ratios
    # ~0.93 (next test), so the assertion still separates the two geometries clearly. The
    # residual is not driven to machine precision in 5000 steps (max |r| ~ 0.01): at a tiny scale
    # the last entries converge slowly, hence the loose residual bound.
    assert resid < 0.05
    assert float(err_l2.min()) > 0.5
    assert float(ratio.median()) < 0.05
    assert float(ratio.max()) < 0.2
    # The decay drove the conserved scale m^2 - w^2 towards 0 (L1-like geometry).
    assert mw.scale()["x"] < 1e-3
    assert schedule.integral > 1.0
    assert schedule.predicted_scale_factor < 1e-10


def test_without_decay_mw_stays_close_to_min_norm():
    a, truth, y = _problem()
    min_norm = torch.linalg.pinv(a) @ y.unsqueeze(-1)
    err_l2 = _rel_err(min_norm.squeeze(-1), truth)
    x, mw, _, _ = _fit_mw(a, y, constant(0.0), steps=1500, lr=0.1)
    ratio = _rel_err(x, truth) / err_l2
    # beta = 1 is an L2-like geometry: measured ratios 0.92-0.98; the decay is what sparsifies.
    assert float(ratio.median()) > 0.6
    assert abs(mw.scale()["x"] - 1.0) < 0.05
