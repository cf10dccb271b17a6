"""Edge metrics against sklearn and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from biostruct.grn import metrics


def _case(seed: int, n: int = 30):
    rng = np.random.default_rng(seed)
    truth = np.where(rng.random((n, n)) < 0.08, rng.choice([-1.0, 1.0], (n, n)), 0.0)
    np.fill_diagonal(truth, 1.0)  # self-loops must be ignored
    pred = truth * rng.uniform(0.2, 1.0, (n, n)) + rng.normal(0, 0.3, (n, n))
    pred[rng.random((n, n)) < 0.3] = 0.0  # ties at zero
    pred = np.round(pred, 2)  # more ties
    return pred, truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sklearn(seed):
    pred, truth = _case(seed)
    off = ~np.eye(truth.shape[0], dtype=bool)
    y, s = truth[off] != 0, np.abs(pred[off])
    assert metrics.auroc(pred, truth) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert metrics.average_precision(pred, truth) == pytest.approx(
        average_precision_score(y, s), abs=1e-12
    )
    p, r, _ = precision_recall_curve(y, s)
    assert metrics.auprc(pred, truth) == pytest.approx(auc(r, p), abs=1e-12)
    assert metrics.auprc_ratio(pred, truth) == pytest.approx(auc(r, p) / y.mean(), abs=1e-9)


def test_hand_computed_small_case():
    truth = np.array([[0, 1, 0], [0, 0, -1], [1, 0, 0]], dtype=float)
    pred = np.array([[9, 0.9, 0.1], [0.2, 0, -0.8], [0.05, 0.3, 0]], dtype=float)
    # off-diagonal scores: (0,1)=.9 T, (0,2)=.1, (1,0)=.2, (1,2)=.8 T, (2,0)=.05 T, (2,1)=.3
    # ranking: .9T .8T .3 .2 .1 .05T -> AUROC = (3+3+0)/(3*3) = 2/3
    assert metrics.auroc(pred, truth) == pytest.approx(2 / 3)
    # EPR: k=3 top set {.9,.8,.3}: precision 2/3, random precision 3/6
    assert metrics.epr(pred, truth) == pytest.approx((2 / 3) / 0.5)
    # signs of the two true edges in the top set are right
    assert metrics.sign_accuracy(pred, truth) == 1.0
    flipped = pred.copy()
    flipped[1, 2] = 0.8
    assert metrics.sign_accuracy(flipped, truth) == 0.5
    # non-zero pattern: all 6 off-diagonal entries non-zero -> TPR 1, TNR 0
    nz = metrics.threshold_metrics(pred, truth, threshold="nonzero")
    assert nz["balanced_accuracy"] == pytest.approx(0.5)
    tk = metrics.threshold_metrics(pred, truth, threshold="topk")
    assert tk["balanced_accuracy"] == pytest.approx(0.5 * (2 / 3 + 2 / 3))
    assert tk["f1"] == pytest.approx(2 / 3)


def test_signed_metrics():
    truth = np.array([[0, 1, -1], [0, 0, 0], [0, 1, 0]], dtype=float)
    pred = np.array([[0, 0.5, -0.9], [0.1, 0, 0], [0, 0.7, 0]], dtype=float)
    se = metrics.signed_epr(pred, truth)
    # '+' class: T+={(0,1),(2,1)}, candidates exclude T- (0,2); top-2 of max(w,0) = both T+
    assert se["+"] == pytest.approx(1.0 / (2 / 5))
    assert se["-"] == pytest.approx(1.0 / (1 / 4))  # T+ removed: 4 candidates
    sa = metrics.signed_auprc(pred, truth)
    assert sa["+"] > 1 and sa["-"] > 1


def test_pooled_sparsity_and_column_normalise():
    assert metrics.pooled_sparsity([np.zeros((2, 2)), np.ones((2, 3))]) == pytest.approx(0.4)
    c = metrics.column_normalise(np.array([[1.0, 0.0], [-3.0, 0.0]]))
    np.testing.assert_allclose(c, [[0.25, 0.0], [0.75, 0.0]])


def test_shape_mismatch_is_input_error():
    from biostruct.errors import InputError

    with pytest.raises(InputError):
        metrics.auroc(np.zeros((3, 3)), np.zeros((4, 4)))
