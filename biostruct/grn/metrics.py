"""Edge metrics for a signed G x G prediction against a signed ground truth (regulator rows).

Definitions follow the project's metric brief (BEELINE-compatible where BEELINE defines them):
the universe is every ordered pair (i, j) with i != j; self-loops are excluded everywhere; the score
of a pair is |w_ij|; labels come from the non-zero pattern of the truth, signs from its sign.
All functions are plain numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from biostruct.errors import InputError

__all__ = [
    "auroc",
    "average_precision",
    "auprc",
    "auprc_ratio",
    "epr",
    "signed_epr",
    "sign_accuracy",
    "signed_auprc",
    "threshold_metrics",
    "edge_metrics",
    "pooled_sparsity",
    "column_normalise",
]


def _check(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.ndim != 2 or pred.shape[0] != pred.shape[1] or pred.shape != truth.shape:
        raise InputError(
            f"prediction {pred.shape} and truth {truth.shape} must be the same square shape",
            field="pred",
            fix="pass G x G matrices in the same gene order",
        )
    if not np.isfinite(pred).all():
        raise InputError("prediction has NaN/inf", field="pred", fix="replace non-finite values")
    return pred, truth


def _offdiag(a: np.ndarray) -> np.ndarray:
    return a[~np.eye(a.shape[0], dtype=bool)]


def _curve_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true/false positives at each distinct score threshold, descending."""
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return tp.astype(np.float64), fp.astype(np.float64)


def _auroc_vec(y: np.ndarray, s: np.ndarray) -> float:
    pos = y.sum()
    neg = y.size - pos
    if pos == 0 or neg == 0:
        return float("nan")
    tp, fp = _curve_counts(y, s)
    tpr = np.r_[0.0, tp / pos]
    fpr = np.r_[0.0, fp / neg]
    return float(np.trapezoid(tpr, fpr))


def _ap_vec(y: np.ndarray, s: np.ndarray) -> float:
    pos = y.sum()
    if pos == 0:
        return float("nan")
    tp, fp = _curve_counts(y, s)
    precision = tp / (tp + fp)
    recall = tp / pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _auprc_vec(y: np.ndarray, s: np.ndarray) -> float:
    """Trapezoidal PR area like sklearn's auc(recall, precision) on precision_recall_curve."""
    pos = y.sum()
    if pos == 0:
        return float("nan")
    tp, fp = _curve_counts(y, s)
    precision = np.r_[1.0, tp / (tp + fp)]
    recall = np.r_[0.0, tp / pos]
    return float(np.trapezoid(precision, recall))


def auroc(pred: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve of |pred| against the truth's non-zero pattern (no self-loops)."""
    pred, truth = _check(pred, truth)
    return _auroc_vec(_offdiag(truth != 0).astype(np.int64), _offdiag(np.abs(pred)))


def average_precision(pred: np.ndarray, truth: np.ndarray) -> float:
    """Average precision (step-wise PR area, as sklearn's average_precision_score)."""
    pred, truth = _check(pred, truth)
    return _ap_vec(_offdiag(truth != 0).astype(np.int64), _offdiag(np.abs(pred)))


def auprc(pred: np.ndarray, truth: np.ndarray) -> float:
    """Trapezoidal area under the precision-recall curve (BEELINE's AUPRC)."""
    pred, truth = _check(pred, truth)
    return _auprc_vec(_offdiag(truth != 0).astype(np.int64), _offdiag(np.abs(pred)))


def _random_precision(truth: np.ndarray) -> float:
    y = _offdiag(truth != 0)
    return float(y.mean())


def auprc_ratio(pred: np.ndarray, truth: np.ndarray) -> float:
    """AUPRC divided by the random precision |T| / (n (n - 1))."""
    return auprc(pred, truth) / _random_precision(np.asarray(truth))


def _top_set(score: np.ndarray, k: int) -> np.ndarray:
    """BEELINE v1.1 EPR set: scores >= max(smallest positive score, k-th largest score)."""
    positive = score[score > 0]
    if positive.size == 0 or k <= 0:
        return np.zeros_like(score, dtype=bool)
    kth = np.sort(score)[::-1][min(k, score.size) - 1]
    t = max(positive.min(), kth)
    return score >= t


def epr(pred: np.ndarray, truth: np.ndarray) -> float:
    """Early precision ratio: precision of the top-|T| edges divided by the random precision."""
    pred, truth = _check(pred, truth)
    y = _offdiag(truth != 0)
    s = _offdiag(np.abs(pred))
    chosen = _top_set(s, int(y.sum()))
    if chosen.sum() == 0:
        return 0.0
    return float((chosen & y).sum() / chosen.sum()) / float(y.mean())


def signed_epr(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """EPR per sign class (BEELINE): for "+", scores max(w, 0), truth T+, T- removed from candidates."""
    pred, truth = _check(pred, truth)
    out: dict[str, float] = {}
    w = _offdiag(pred)
    t = _offdiag(truth)
    for name, sgn in (("+", 1.0), ("-", -1.0)):
        y = np.sign(t) == sgn
        keep = ~(np.sign(t) == -sgn)
        s = np.maximum(sgn * w, 0.0)[keep]
        yk = y[keep]
        if yk.sum() == 0:
            out[name] = float("nan")
            continue
        chosen = _top_set(s, int(yk.sum()))
        prec = (chosen & yk).sum() / chosen.sum() if chosen.sum() else 0.0
        out[name] = float(prec) / float(yk.mean())
    return out


def sign_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of correctly signed edges among the true edges in the EPR top set."""
    pred, truth = _check(pred, truth)
    y = _offdiag(truth != 0)
    w = _offdiag(pred)
    chosen = _top_set(np.abs(w), int(y.sum())) & y
    if chosen.sum() == 0:
        return float("nan")
    return float((np.sign(w[chosen]) == np.sign(_offdiag(truth)[chosen])).mean())


def signed_auprc(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """AUPRC of max(w, 0) against T+ and of max(-w, 0) against T-, each over its random precision."""
    pred, truth = _check(pred, truth)
    w, t = _offdiag(pred), _offdiag(truth)
    out = {}
    for name, sgn in (("+", 1.0), ("-", -1.0)):
        y = (np.sign(t) == sgn).astype(np.int64)
        if y.sum() == 0:
            out[name] = float("nan")
            continue
        out[name] = _auprc_vec(y, np.maximum(sgn * w, 0.0)) / float(y.mean())
    return out


def threshold_metrics(
    pred: np.ndarray, truth: np.ndarray, *, threshold: str = "nonzero"
) -> dict[str, float]:
    """Balanced accuracy, F1, precision and recall of a binary edge set fixed without the truth.

    Parameters
    ----------
    threshold
        ``"nonzero"``: the model's own non-zero pattern (for pruned models); ``"topk"``: the
        EPR top set with k = number of true edges.
    """
    pred, truth = _check(pred, truth)
    y = _offdiag(truth != 0)
    s = _offdiag(np.abs(pred))
    if threshold == "nonzero":
        chosen = s > 0
    elif threshold == "topk":
        chosen = _top_set(s, int(y.sum()))
    else:
        raise InputError(
            f"unknown threshold {threshold!r}", field="threshold", fix="use nonzero/topk"
        )
    tp = float((chosen & y).sum())
    fp = float((chosen & ~y).sum())
    fn = float((~chosen & y).sum())
    tn = float((~chosen & ~y).sum())
    tpr = tp / (tp + fn) if tp + fn else float("nan")
    tnr = tn / (tn + fp) if tn + fp else float("nan")
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * tpr / (precision + tpr) if precision + tpr > 0 else 0.0
    return {
        "balanced_accuracy": 0.5 * (tpr + tnr),
        "f1": f1,
        "precision": precision,
        "recall": tpr,
        "n_predicted": tp + fp,
    }


def column_normalise(pred: np.ndarray) -> np.ndarray:
    """PHOENIX scoring |E_ij| / sum_i |E_ij| (per target column), NaN -> 0."""
    a = np.abs(np.asarray(pred, dtype=np.float64))
    col = a.sum(axis=0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(col > 0, a / col, 0.0)
    return out


def pooled_sparsity(matrices: list[np.ndarray]) -> float:
    """Fraction of exact zeros pooled over several weight matrices (DASH's sparsity)."""
    total = sum(int(np.asarray(m).size) for m in matrices)
    zeros = sum(int((np.asarray(m) == 0).sum()) for m in matrices)
    return zeros / total if total else float("nan")


def edge_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """All edge metrics in one flat dict (JSON-friendly floats)."""
    pred, truth = _check(pred, truth)
    out: dict[str, Any] = {
        "auroc": auroc(pred, truth),
        "ap": average_precision(pred, truth),
        "auprc": auprc(pred, truth),
        "auprc_ratio": auprc_ratio(pred, truth),
        "epr": epr(pred, truth),
        "sign_accuracy": sign_accuracy(pred, truth),
        "n_true_edges": int(_offdiag(truth != 0).sum()),
    }
    for k, v in signed_epr(pred, truth).items():
        out[f"signed_epr{k}"] = v
    for k, v in signed_auprc(pred, truth).items():
        out[f"signed_auprc_ratio{k}"] = v
    nz = threshold_metrics(pred, truth, threshold="nonzero")
    out["balanced_accuracy"] = nz["balanced_accuracy"]
    out["f1"] = nz["f1"]
    out["recall_nonzero"] = nz["recall"]
    out["n_predicted_nonzero"] = nz["n_predicted"]
    tk = threshold_metrics(pred, truth, threshold="topk")
    out["balanced_accuracy_topk"] = tk["balanced_accuracy"]
    out["f1_topk"] = tk["f1"]
    return out
