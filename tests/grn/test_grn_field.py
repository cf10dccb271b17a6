"""The PHOENIX vector field: published checkpoint, derivatives, effect matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biostruct.errors import DataFormatError
from biostruct.grn import metrics
from biostruct.grn.field import PhoenixField


def _numpy_rhs(arrays: dict, x: np.ndarray) -> np.ndarray:
    ws = arrays["sums.linear_out.weight_orig"] * arrays["sums.linear_out.weight_mask"]
    bs = arrays["sums.linear_out.bias"]
    wp = arrays["prods.linear_out.weight_orig"] * arrays["prods.linear_out.weight_mask"]
    bp = arrays["prods.linear_out.bias"]
    a_s = arrays["alpha_comb_sums.linear_out.weight_orig"]
    a_p = arrays["alpha_comb_prods.linear_out.weight_orig"]
    m = np.maximum(arrays["gene_multipliers"].ravel(), 0.0)
    s = (x - 0.5) / (1 + np.abs(x - 0.5))
    u = s @ ws.T + bs
    v = np.exp(np.log(1 + s) @ wp.T + bp)
    joint = u @ a_s.T + v @ a_p.T
    return m * (joint - x)


def test_npz_derivatives_match_numpy(sim350_npz):
    arrays = {k: v.astype(np.float64) for k, v in np.load(sim350_npz).items()}
    field = PhoenixField.from_npz(sim350_npz)
    x = np.random.default_rng(0).uniform(0, 1, size=(16, 350))
    got = field(torch.as_tensor(x, dtype=torch.float32)).detach().numpy()
    want = _numpy_rhs(arrays, x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert np.abs(want).max() > 1e-2  # a non-trivial field


def test_npz_effect_matrix_auroc(sim350_npz, sim350_truth):
    field = PhoenixField.from_npz(sim350_npz)
    e = field.effect_matrix().numpy()
    assert e.shape == (350, 350)
    assert metrics.auroc(e, sim350_truth) == pytest.approx(0.989, abs=0.002)
    assert metrics.average_precision(e, sim350_truth) == pytest.approx(0.971, abs=0.002)
    # signs of the strongest true edges agree with the truth
    assert metrics.sign_accuracy(e, sim350_truth) > 0.95


def test_effect_matrix_formula():
    field = PhoenixField(5, 3, seed=1)
    ws, wp = field.sums.weight.detach().numpy(), field.prods.weight.detach().numpy()
    a_s, a_p = field.alpha_sums.weight.detach().numpy(), field.alpha_prods.weight.detach().numpy()
    with torch.no_grad():
        field.gene_rates.copy_(torch.tensor([0.5, -1.0, 2.0, 0.1, 0.0]))
    m = np.array([0.5, 0.0, 2.0, 0.1, 0.0])
    want = (ws.T @ a_s.T + wp.T @ a_p.T) * m[None, :]
    np.testing.assert_allclose(field.effect_matrix().numpy(), want, rtol=1e-6, atol=1e-7)


def test_initialisation_is_published_and_seeded():
    a = PhoenixField(200, 40, seed=3)
    b = PhoenixField(200, 40, seed=3)
    c = PhoenixField(200, 40, seed=4)
    assert torch.equal(a.sums.weight, b.sums.weight)
    assert not torch.equal(a.sums.weight, c.sums.weight)
    # 95 % of each input column is zero (38 of 40 rows)
    zeros = (a.sums.weight == 0).sum(0)
    assert torch.all(zeros == 38)
    # orthogonal output mixing: columns orthonormal
    q = a.alpha_sums.weight
    torch.testing.assert_close(q.T @ q, torch.eye(40), atol=1e-5, rtol=0)
    assert float(a.gene_rates.detach().min()) >= 0 and float(a.gene_rates.detach().max()) <= 1
    p = PhoenixField(200, 40, init="phoenix", seed=3)
    assert torch.all((p.alpha_sums.weight == 0).sum(0) == 190)


def test_from_npz_rejects_bad_file(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, foo=np.zeros(3))
    with pytest.raises(DataFormatError, match="sums"):
        PhoenixField.from_npz(bad)
