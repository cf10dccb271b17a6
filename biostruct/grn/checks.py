"""Fit-quality checks of a trained GRN model: a fit that went wrong must say so.

Each check returns plain-language warnings; :func:`biostruct.tl.infer_grn` logs them and writes
them to ``uns[key]["warnings"]``, and the HTML report shows them as a red banner.

- **range**: the field simulated from the first observed state of every trajectory (the lineage
  mean paths for single cells) over the observed times must stay near the observed range; a
  prediction that leaves [min - range, max + range] of any gene is a diverged field;
- **selection**: model selection must not keep the initialisation (best validation at the first
  epoch), and the validation loss at the end should not be far above its best (overfitting or
  divergence, e.g. a 100-fold rise);
- **ensemble**: ensemble members that do not beat the zero field on held-out transitions
  (reported by :mod:`biostruct.grn.velocity`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from biostruct.errors import SolverError

__all__ = ["range_check", "selection_check", "fit_warnings"]

#: a validation loss this many times its best, at the end of training, is reported
VAL_RISE = 10.0
#: adaptive-solver step budget of the range check's simulations
MAX_STEPS = 300


def range_check(model: Any, *, slack: float = 1.0, subject: str = "the fitted field") -> list[str]:
    """Warn when simulated trajectories leave the observed range by more than ``slack`` ranges."""
    data = model.data
    if data is None or not data.values:
        return []
    # the observed range: of the cells themselves in single-cell mode (mean paths are narrower)
    obs = np.asarray(model.observed_states())
    lo, hi = obs.min(0), obs.max(0)
    span = np.maximum(hi - lo, 1e-6)
    worst, worst_gene = 0.0, 0
    solver = model.solver
    # a diverging field makes an adaptive solver crawl: a step budget turns that into a finding
    model.solver = replace(solver, max_steps=min(solver.max_steps, MAX_STEPS))
    try:
        for t, v in zip(data.times, data.values):
            p = model.predict(v[0], t)[0]
            if not np.isfinite(p).all():
                return [f"simulated trajectories reach NaN/inf: {subject} diverges"]
            excess = np.maximum(lo - p, p - hi) / span
            if excess.max() > worst:
                worst, worst_gene = float(excess.max()), int(np.argmax(excess.max(0)))
            if worst > slack:
                break
    except SolverError:
        return [
            f"simulating {subject} needed more than {MAX_STEPS} solver steps on an observed "
            "interval: the field diverges or is extremely stiff, and its edges should not be "
            "trusted"
        ]
    except Exception as exc:  # any other failure to simulate is itself the finding
        return [f"simulating {subject} failed ({type(exc).__name__}: {exc})"]
    finally:
        model.solver = solver
    if worst > slack:
        gene = model.var_names[worst_gene]
        return [
            f"simulated trajectories leave the observed range by {worst:.1f}x the observed span "
            f"(gene {gene}): {subject} is unstable and its edges should not be trusted"
        ]
    return []


def selection_check(history: list[dict[str, Any]], best_epoch: int) -> list[str]:
    """Warn when the best validation epoch is the first one or validation loss rose sharply."""
    vals = [h["val_loss"] for h in history if np.isfinite(h.get("val_loss", np.nan))]
    out = []
    if len(vals) >= 3 and best_epoch <= 1:
        out.append(
            "model selection kept the first epoch (validation loss never improved after it): "
            "the network is close to its random initialisation"
        )
    if len(vals) >= 2:
        best = min(vals)
        if best > 0 and vals[-1] > VAL_RISE * best:
            out.append(
                f"validation loss rose {vals[-1] / best:.0f}-fold from its best "
                f"({best:.3g} -> {vals[-1]:.3g}): training diverged or overfitted"
            )
    return out


def fit_warnings(model: Any) -> list[str]:
    """Every check of a fitted :class:`~biostruct.grn.model.GRNModel`."""
    out = list(model.warnings)
    if model.history:
        out += selection_check(model.history, int(model.params.get("best_epoch", 0)))
    subject = (
        "DASH's network (varp[key + '_dash'])"
        if model.method == "posterior"
        else "the fitted field"
    )
    out += range_check(model, subject=subject)
    return out
