"""DASH score formulas against hand-written numpy, and the pruning schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biostruct.errors import PriorError
from biostruct.grn import dash


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


@pytest.fixture()
def small():
    rng = np.random.default_rng(0)
    g, h = 6, 3
    prior = np.zeros((g, g))
    prior[0, 1] = prior[0, 2] = 1
    prior[1, 3] = -1
    prior[4, 5] = 1
    weights = {
        "sums.weight": torch.tensor(rng.normal(size=(h, g))),
        "prods.weight": torch.tensor(rng.normal(size=(h, g))),
        "alpha_sums.weight": torch.tensor(rng.normal(size=(g, h))),
        "alpha_prods.weight": torch.tensor(rng.normal(size=(g, h))),
    }
    rates = torch.tensor([0.5, -0.2, 1.0, 0.0, 2.0, 0.3])
    carried = {k: torch.tensor(rng.uniform(size=tuple(v.shape))) for k, v in weights.items()}
    return prior, weights, rates, carried


def test_ppi_is_coregulation(small):
    prior = small[0]
    ppi = _np(dash.ppi_from_prior(prior))
    want = np.abs(prior) @ np.abs(prior).T
    np.testing.assert_allclose(ppi, want / want.sum())
    with pytest.raises(PriorError, match="no edges"):
        dash.ppi_from_prior(np.zeros((4, 4)))


def test_projections_match_numpy(small):
    prior, _, _, carried = small
    s = _np(carried["sums.weight"])
    ppi = np.abs(prior) @ np.abs(prior).T
    ppi /= ppi.sum()
    x = np.linalg.inv(s @ s.T) @ s @ ppi
    np.testing.assert_allclose(
        _np(dash.input_projection(carried["sums.weight"], torch.tensor(ppi))), x, rtol=1e-9
    )
    t = np.abs(prior)
    c = (s @ t).T @ np.linalg.inv(s @ s.T)
    got = _np(dash.output_projection(carried["sums.weight"], torch.tensor(t)))
    np.testing.assert_allclose(got, c, rtol=1e-9, atol=1e-12)
    # C is the least-squares solution of C S = T^T
    lsq = np.linalg.lstsq(s.T, t, rcond=None)[0].T
    np.testing.assert_allclose(got, lsq, rtol=1e-7, atol=1e-10)


def test_weight_parts(small):
    _, w, rates, _ = small
    ws = _np(w["sums.weight"])
    np.testing.assert_allclose(
        _np(dash.weight_part("sums.weight", w["sums.weight"])), np.abs(ws) / np.abs(ws).sum()
    )
    wp = _np(w["prods.weight"])
    np.testing.assert_allclose(
        _np(dash.weight_part("prods.weight", w["prods.weight"])), np.exp(wp) / np.exp(wp).sum()
    )
    a = _np(w["alpha_sums.weight"])
    m = np.maximum(_np(rates), 0)
    want = np.abs(a) * m[:, None]
    np.testing.assert_allclose(
        _np(dash.weight_part("alpha_sums.weight", w["alpha_sums.weight"], rates)), want / want.sum()
    )


def test_dash_scores_full_event(small):
    prior, w, rates, carried = small
    lam_ppi, lam_motif = 0.05, 0.01
    t = np.abs(prior)
    ppi = t @ t.T
    ppi /= ppi.sum()
    got = dash.dash_scores(
        w,
        rates,
        carried,
        ppi=torch.tensor(ppi),
        motif=torch.tensor(t),
        lam_ppi=lam_ppi,
        lam_motif=lam_motif,
    )
    m = np.maximum(_np(rates), 0)
    want = {}
    for name, wfn in (("sums.weight", np.abs), ("prods.weight", np.exp)):
        s = _np(carried[name])
        x = np.linalg.inv(s @ s.T) @ s @ ppi
        wpart = wfn(_np(w[name]))
        want[name] = lam_ppi * np.abs(x) + (1 - lam_ppi) * wpart / wpart.sum()
    for out, inp in (("alpha_sums.weight", "sums.weight"), ("alpha_prods.weight", "prods.weight")):
        s = want[inp]  # the just-updated input score, not the carried one
        c = (s @ t).T @ np.linalg.inv(s @ s.T)
        wpart = np.abs(_np(w[out])) * m[:, None]
        want[out] = lam_motif * np.abs(c) + (1 - lam_motif) * wpart / wpart.sum()
    for k in want:
        np.testing.assert_allclose(_np(got[k]), want[k], rtol=1e-8, atol=1e-12, err_msg=k)


def test_lambda_zero_is_magnitude_and_one_is_prior(small):
    prior, w, rates, carried = small
    t = torch.tensor(np.abs(prior))
    ppi = dash.ppi_from_prior(prior)
    imp = dash.dash_scores(w, rates, carried, ppi=None, motif=None, lam_ppi=0.0, lam_motif=0.0)
    for k in imp:
        torch.testing.assert_close(imp[k], dash.weight_part(k, w[k], rates))
    only = dash.dash_scores(w, rates, carried, ppi=ppi, motif=t, lam_ppi=1.0, lam_motif=1.0)
    torch.testing.assert_close(
        only["sums.weight"], dash.input_projection(carried["sums.weight"], ppi).abs()
    )


def test_schedule_dash_simu():
    sched = dash.PruneSchedule()
    cuts = sched.cuts(200)
    assert cuts[0] == (3, 0.7)
    assert [e for e, _ in cuts[1:]] == list(range(10, 200, 10))
    final = sched.densities(200)[-1][1]
    assert final == pytest.approx(0.3 * 0.9**19)
    assert 1 - final > 0.95
    assert sched.fraction_at(200, 200) is None
    assert dash.PruneSchedule(stop_epoch=50).last_cut(200) == 50
