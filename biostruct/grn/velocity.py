"""Edge scores from the fitted dynamics: a bagged ensemble of PHOENIX fields and their Jacobians.

Each member is a :class:`~biostruct.grn.field.PhoenixField` fitted by collocation (gradient
matching): for every observed transition x0 -> x1 after dt, the field at the midpoint should equal
the finite-difference velocity, f((x0 + x1) / 2) = (x1 - x0) / dt, which is the implicit-midpoint
step of the ODE (second-order accurate) and needs no solver, so it cannot blow up. Members differ
in initialisation and in a bootstrap resample of the transitions; each keeps the state of its best
loss on held-out transitions (early stopping, never the initialisation: the first evaluation is
after the first steps and a member whose validation loss never beats that of the zero field is
reported as not fitted).

The edge score is the Jacobian J_ij = d f_j / d x_i (regulator i, target j) averaged over the
observed states, normalised per member by its largest entry and averaged over members; the sign
agreement of the members is the edge's stability.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from biostruct.errors import ConfigError
from biostruct.grn import extract
from biostruct.grn.field import PhoenixField

__all__ = ["VelocityConfig", "VelocityEnsemble", "fit_velocity_ensemble", "combine_with_prior"]


@dataclass
class VelocityConfig:
    """Settings of the bagged collocation fit (defaults measured on the DEV BoolODE set).

    Attributes
    ----------
    members
        Ensemble size (5: AUPRC ratio within noise of 10 at half the time).
    hidden
        Hidden width of each member's branches.
    max_steps, lr, eval_every, patience
        Full-batch Adam steps, learning rate, validation interval and early-stopping patience
        (in steps). On the DEV set the best validation step was 300-400 of 1,500.
    val_fraction
        Share of transitions held out (per member) for early stopping.
    bootstrap
        Resample the training transitions with replacement per member (bagging).
    jacobian
        ``"field"``: d f_j / d x_i; ``"joint"``: of the target level (without the rates).
    bound
        Output bound of the members' fields (see :class:`~biostruct.grn.field.PhoenixField`).
    model
        ``"neural"``: the PHOENIX members only; ``"linear"``: the linear ODE dx/dt = A x + b
        fitted to the same velocities (ridge, penalty by leave-one-out CV), score A;
        ``"mixed"``: both, edge score = mean of the two rank-normalised |scores| (sign of
        their sum). The linear field is the low-variance end and the members capture the
        non-linear (Hill-like) regulation; on the DEV set neither alone is best everywhere.
    """

    members: int = 5
    hidden: int = 40
    max_steps: int = 1500
    lr: float = 1e-2
    eval_every: int = 10
    patience: int = 300
    val_fraction: float = 0.15
    bootstrap: bool = True
    jacobian: str = "field"
    bound: float | None = 2.0
    model: str = "mixed"

    def validate(self) -> VelocityConfig:
        for name in ("members", "hidden", "max_steps", "eval_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1", field=name, fix="use a positive integer")
        if self.lr <= 0:
            raise ConfigError("lr must be positive", field="lr", fix="e.g. lr=1e-2")
        if self.model not in ("neural", "linear", "mixed"):
            raise ConfigError(
                f"model must be 'neural', 'linear' or 'mixed', got {self.model!r}",
                field="model",
                fix="model='mixed' (default)",
            )
        if not 0 < self.val_fraction < 0.5:
            raise ConfigError(
                "val_fraction must be in (0, 0.5)", field="val_fraction", fix="e.g. 0.15"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VelocityEnsemble:
    """Result of :func:`fit_velocity_ensemble`."""

    score: np.ndarray
    stability: np.ndarray
    fields: list[PhoenixField]
    val_loss: list[float]
    zero_loss: list[float]
    best_step: list[int]
    history: list[list[tuple[int, float, float]]] = field(default_factory=list)
    neural: np.ndarray | None = None
    linear: np.ndarray | None = None

    @property
    def fitted(self) -> list[bool]:
        """Per member: did it beat the zero field (no dynamics) on held-out transitions?"""
        return [v < z for v, z in zip(self.val_loss, self.zero_loss)]


def fit_velocity_ensemble(
    x0: np.ndarray,
    x1: np.ndarray,
    dt: np.ndarray,
    states: np.ndarray,
    config: VelocityConfig | None = None,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> VelocityEnsemble:
    """Fit ``config.members`` PHOENIX fields to finite-difference velocities and score edges.

    Parameters
    ----------
    x0, x1, dt
        Transitions (n x G, n x G, n).
    states
        States at which the Jacobian is averaged (e.g. every observed cell).
    config
        :class:`VelocityConfig`.
    seed
        Seeds initialisations, splits and resamples.
    device
        Torch device.
    """
    cfg = (config or VelocityConfig()).validate()
    dev = torch.device(device)
    dt = np.asarray(dt, dtype=np.float64)
    keep = dt > 0
    mid = 0.5 * (np.asarray(x0)[keep] + np.asarray(x1)[keep])
    vel = (np.asarray(x1)[keep] - np.asarray(x0)[keep]) / dt[keep, None]
    n, g = vel.shape
    if n < 10:
        raise ConfigError(
            f"only {n} transitions with a positive time step; the ensemble needs >= 10",
            field="adata",
            fix="provide more cells or time points",
        )
    rng = np.random.default_rng(seed)
    m_all = torch.as_tensor(mid, dtype=torch.float32, device=dev)
    v_all = torch.as_tensor(vel, dtype=torch.float32, device=dev)
    scale = float(v_all.pow(2).mean().clamp_min(1e-12))
    states_t = np.asarray(states, dtype=np.float64)
    total = np.zeros((g, g))
    signs = np.zeros((g, g))
    fields, val_losses, zero_losses, best_steps, histories = [], [], [], [], []
    for member in range(cfg.members if cfg.model != "linear" else 0):
        perm = rng.permutation(n)
        n_val = max(1, int(round(cfg.val_fraction * n)))
        vi, ti = perm[:n_val], perm[n_val:]
        if cfg.bootstrap:
            ti = rng.choice(ti, size=len(ti), replace=True)
        ti_t = torch.as_tensor(ti, device=dev)
        vi_t = torch.as_tensor(vi, device=dev)
        m_tr, v_tr, m_va, v_va = m_all[ti_t], v_all[ti_t], m_all[vi_t], v_all[vi_t]
        f = PhoenixField(g, cfg.hidden, seed=seed * 1000 + member, bound=cfg.bound).to(dev)
        opt = torch.optim.Adam(f.parameters(), lr=cfg.lr)
        zero = float(v_va.pow(2).mean()) / scale
        best, best_step, best_state = float("inf"), 0, None
        hist: list[tuple[int, float, float]] = []
        for step in range(1, cfg.max_steps + 1):
            opt.zero_grad(set_to_none=True)
            loss = ((f(m_tr) - v_tr) ** 2).mean() / scale
            loss.backward()
            opt.step()
            if step % cfg.eval_every == 0 or step == cfg.max_steps:
                with torch.no_grad():
                    lv = float(((f(m_va) - v_va) ** 2).mean()) / scale
                hist.append((step, float(loss.detach()), lv))
                if np.isfinite(lv) and lv < best:
                    best, best_step = lv, step
                    best_state = {k: t.detach().clone() for k, t in f.state_dict().items()}
                elif step - best_step >= cfg.patience:
                    break
        if best_state is not None:
            f.load_state_dict(best_state)
        j = extract.jacobian_effect(f, states_t, of=cfg.jacobian)
        np.fill_diagonal(j, 0.0)
        peak = np.abs(j).max()
        if peak > 0 and np.isfinite(peak):
            total += j / peak
            signs += np.sign(j)
        fields.append(f)
        val_losses.append(best)
        zero_losses.append(zero)
        best_steps.append(best_step)
        histories.append(hist)
    neural = total / max(cfg.members, 1)
    stability = np.abs(signs) / max(cfg.members, 1)
    lin = None if cfg.model == "neural" else linear_velocity(mid, vel)
    if lin is None:
        score = neural
    else:
        score = lin if cfg.model == "linear" else _rank_mix(neural, lin)
    return VelocityEnsemble(
        score,
        stability,
        fields,
        val_losses,
        zero_losses,
        best_steps,
        histories,
        neural=neural if cfg.model != "linear" else None,
        linear=lin,
    )


def linear_velocity(mid: np.ndarray, vel: np.ndarray) -> np.ndarray:
    """A of the linear ODE dx/dt = A x + b fitted to velocities (ridge, LOO-CV penalty).

    Returns A transposed to regulator rows (entry (i, j): effect of i on j's velocity), with a
    zero diagonal, in units of one standard deviation of the regulator.
    """
    from sklearn.linear_model import RidgeCV

    coef = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(mid, vel).coef_  # (targets, regulators)
    a = coef.T * mid.std(0)[:, None]
    np.fill_diagonal(a, 0.0)
    return a


def _rank_mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of the rank-normalised |a| and |b| (off-diagonal), signed by sign(a/|a|max + b/|b|max)."""
    from scipy.stats import rankdata

    g = a.shape[0]
    off = ~np.eye(g, dtype=bool)
    ra = rankdata(np.abs(a[off])) / off.sum()
    rb = rankdata(np.abs(b[off])) / off.sum()
    sa = a / max(np.abs(a).max(), 1e-300)
    sb = b / max(np.abs(b).max(), 1e-300)
    sign = np.sign(sa + sb)[off]
    sign[sign == 0] = 1.0
    out = np.zeros_like(a, dtype=np.float64)
    out[off] = 0.5 * (ra + rb) * sign
    return out


#: the smallest weight of the evidence: it breaks the prior's ties, and cannot cross blocks
TIE_BREAK = 1e-3


def _storey_precision(z_prior: np.ndarray, z_rest: np.ndarray, lam: float = 0.5) -> float:
    """1 - pi0 of the prior edges: their share with evidence no better than the non-prior pairs.

    Empirical p-values of the prior edges against the non-prior evidence; Storey's estimator
    pi0 = #(p > lam) / ((1 - lam) n). Clipped to [0.5, 0.99]: the prior is trusted at least as a
    coin flip, never blindly.
    """
    if z_prior.size == 0 or z_rest.size == 0:
        return 0.9
    rest = np.sort(z_rest)
    p = 1.0 - np.searchsorted(rest, z_prior, side="left") / rest.size
    pi0 = float(np.mean(p > lam) / (1.0 - lam))
    return float(np.clip(1.0 - pi0, 0.5, 0.99))


def _evidence_z(ev: np.ndarray, prior: np.ndarray, signed: bool) -> np.ndarray:
    """Each pair's evidence as a z score against the non-prior pairs (mostly no edge).

    Rank-based, so robust to the scale and tail of any score. A pair outside the prior (or any
    pair of an unsigned prior) gets the two-sided p-value ``P(|E| >= |e|)`` under the empirical
    null of the non-prior |evidence|; a signed prior edge the one-sided ``P(s E >= s e)`` in its
    sign s, from the same null taken as symmetric: half the two-sided tail when the evidence
    agrees with the claimed sign, one minus half of it when it contradicts it. So a prior edge
    the data are silent about sits at p ~ 0.5 (z ~ 0), not at the bottom, and one whose evidence
    points the other way falls below it. ``z = isf(p)``, plus a 1e-6 share of the rank of the
    score itself so that edges between the same two null values keep their order (no ties).
    """
    from scipy.stats import norm, rankdata

    mag = np.abs(ev)
    key = mag.copy()
    rest = np.sort(mag[prior == 0]) if np.any(prior == 0) else np.sort(mag)

    def tail(a: np.ndarray) -> np.ndarray:  # share of the null with |E| >= a (smoothed)
        return (rest.size - np.searchsorted(rest, a, side="left") + 0.5) / (rest.size + 1.0)

    p = tail(mag)
    if signed:
        on = prior != 0
        agree = np.sign(prior[on]) * ev[on]
        half = 0.5 * tail(np.abs(agree))
        p[on] = np.where(agree >= 0, half, 1.0 - half)
        key[on] = agree
    z = norm.isf(np.clip(p, 1e-12, 1.0 - 1e-12))
    return z + 1e-6 * rankdata(key) / key.size


def combine_with_prior(
    evidence: np.ndarray,
    prior: np.ndarray,
    *,
    prior_precision: float | None = None,
    signed: bool | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """Posterior-style edge score from a prior network and data evidence.

    The evidence of each off-diagonal pair is first put on one z scale: the z score of its
    p-value against the non-prior pairs' |evidence| (two-sided; one-sided in the prior's sign
    for the edges of a signed prior, see ``signed``). The prior's edges are then treated as noisy
    positive labels: a logistic regression of prior membership on z measures how many
    log-odds one unit of evidence is worth (``beta``, floored at ``TIE_BREAK``: evidence that
    does not agree with the prior at all only orders the edges the prior ties). The posterior log-odds of an edge is
    then ``logit(pi_prior)`` for prior edges, ``logit(pi_rest)`` for the others, plus
    ``beta * z``. With ``pi_prior`` the prior's precision (default: estimated by the same
    Storey's pi0 of the prior edges' evidence against the non-prior pairs, in [0.5, 0.99]) the data can
    demote a prior edge it contradicts below a strongly supported non-prior edge.

    Parameters
    ----------
    evidence
        Signed G x G data score (regulator rows), e.g. :func:`conditional_evidence`; its
        magnitude ranks, its sign is checked against a signed prior and is the output's sign
        where the prior has no edge.
    prior
        Signed G x G prior (non-zero = edge).
    prior_precision
        Assumed share of prior edges that are true.
    signed
        Whether the prior's signs are claims to test (default: when it has edges of both
        signs; an all-positive prior may be an unsigned motif list). A signed prior edge is
        then scored by the evidence *in its direction*, ``sign(prior) * evidence``: evidence
        of the opposite effect (an activation where the prior says repression) is less likely
        under the prior's claim than no evidence at all, so it ranks such an edge below the
        prior edges the data are silent about. Pairs outside the prior score ``|evidence|``.

    Returns
    -------
    ``(score, info)``: a signed G x G score (prior sign on prior edges) and the fitted numbers.
    """
    from sklearn.linear_model import LogisticRegression

    ev = np.asarray(evidence, dtype=np.float64)
    pr = np.asarray(prior, dtype=np.float64)
    g = ev.shape[0]
    off = ~np.eye(g, dtype=bool)
    y = (pr[off] != 0).astype(int)
    if signed is None:
        signed = bool((pr < 0).any() and (pr > 0).any())
    z = _evidence_z(ev[off], pr[off], signed)
    n_pos = int(y.sum())
    if 0 < n_pos < y.size:
        lr = LogisticRegression(C=1e4).fit(z[:, None], y)
        beta = float(lr.coef_[0, 0])
    else:
        beta = 0.0
    # A weight the noisy-label fit cannot show to be positive still orders the edges the prior
    # ties (within its edges and within the rest), never across them: on the DEV set this
    # within-block order was informative even where the fit gave beta <= 0 (50 % of edges moved).
    beta = max(beta, TIE_BREAK)
    n_pairs = y.size
    if prior_precision is None:
        prior_precision = _storey_precision(z[y == 1], z[y == 0])
    pi_prior = float(np.clip(prior_precision, 1e-3, 1 - 1e-3))
    expected_true = max(pi_prior * n_pos, 1.0)
    pi_rest = float(np.clip(expected_true * (1 - pi_prior) / max(n_pairs - n_pos, 1), 1e-4, 0.5))
    logit = np.where(y == 1, np.log(pi_prior / (1 - pi_prior)), np.log(pi_rest / (1 - pi_rest)))
    post = 1.0 / (1.0 + np.exp(-(logit + beta * z)))
    sign = np.where(y == 1, np.sign(pr[off]), np.sign(ev[off]))
    sign[sign == 0] = 1.0
    out = np.zeros((g, g))
    out[off] = post * sign
    return out, {"beta": beta, "pi_prior": pi_prior, "pi_rest": pi_rest, "signed": float(signed)}


def _additive_basis(mid: np.ndarray, basis: str, n_knots: int) -> np.ndarray:
    """Centred per-gene basis, n x G x m: the level itself (m = 1) or its cubic B-splines."""
    if basis == "linear":
        return (mid - mid.mean(0))[:, :, None]
    from sklearn.preprocessing import SplineTransformer

    spline = SplineTransformer(n_knots=n_knots, degree=3, knots="quantile", include_bias=False)
    cols = []
    for i in range(mid.shape[1]):
        if np.ptp(mid[:, i]) > 0:
            b = spline.fit_transform(mid[:, [i]])
        else:  # a constant gene: no basis to fit quantile knots to, and nothing to explain
            b = np.zeros((len(mid), n_knots + 1))
        cols.append(b - b.mean(0))
    return np.stack(cols, axis=1)


def _rss(y: np.ndarray, a: np.ndarray) -> float:
    if a.shape[1] == 0:
        return float(y @ y)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    r = y - a @ coef
    return float(r @ r)


def _partial_r2(z: np.ndarray, vel: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Partial R^2 of each regulator's basis group for each target's velocity (see below)."""
    n, g, m = z.shape
    flat = z.reshape(n, g * m)
    zz = np.einsum("nim,nik->imk", z, z)  # each gene's own Gram block
    out = np.zeros((g, g))
    for j in range(g):
        regs = [i for i in np.flatnonzero(prior[:, j]) if i != j]
        base = [j, *regs]
        a = z[:, base, :].reshape(n, -1)
        q, _ = np.linalg.qr(a)
        y = vel[:, j] - vel[:, j].mean()
        res_y = y - q @ (q.T @ y)
        rss_full = float(res_y @ res_y)
        if rss_full <= 0:
            continue
        # adding regulator i: project the residual on i's basis with the base regressed out
        qz = (q.T @ flat).reshape(-1, g, m)
        gram = zz - np.einsum("bim,bik->imk", qz, qz)
        cross = np.einsum("nim,n->im", z, res_y)  # res_y is orthogonal to the base already
        ridge = 1e-10 * np.trace(gram, axis1=1, axis2=2)[:, None, None] + 1e-300
        sol = np.linalg.solve(gram + ridge * np.eye(m), cross[:, :, None])[:, :, 0]
        add = np.einsum("im,im->i", cross, sol) / rss_full
        add[base] = 0.0
        out[:, j] = add
        # a prior regulator: the rise of the residual when it is left out of the base
        for i in regs:
            reduced = z[:, [k for k in base if k != i], :].reshape(n, -1)
            rss_red = _rss(y, reduced)
            out[i, j] = (rss_red - rss_full) / rss_red if rss_red > 0 else 0.0
    return np.clip(out, 0.0, 1.0)


def conditional_evidence(
    x0: np.ndarray,
    x1: np.ndarray,
    dt: np.ndarray,
    prior: np.ndarray,
    *,
    basis: str = "spline",
    n_knots: int = 4,
) -> np.ndarray:
    """Evidence for each edge given the rest of the prior network: velocity partial correlations.

    For target j with prior regulators R_j, the base model regresses j's velocity
    (x1 - x0) / dt on an intercept, j's own level and R_j (at the transition midpoints), each
    gene entering through an additive basis: its level (``basis="linear"``) or a cubic B-spline
    of it with ``n_knots`` quantile knots (``"spline"``, default: BoolODE-like regulation is a
    saturating Hill function, which a straight line fits poorly at both ends). A prior edge
    i -> j scores how much of j's velocity i explains once the other prior regulators are in
    (partial R^2 of leaving i's group out, leave-one-regulator-out); a pair outside the prior
    scores the partial R^2 of adding i to the base. The score is the square root of the partial
    R^2 (for ``"linear"`` exactly the partial correlation), signed by the partial correlation
    of i's level in the same model (the direction of the effect: + activation, - repression),
    so that :func:`combine_with_prior` can check it against a signed prior. Both kinds of pair
    are on the same [0, 1) scale, so the data demote prior edges the dynamics do not need and
    promote missing ones.

    Parameters
    ----------
    x0, x1, dt
        Transitions (n x G, n x G, n); steps with dt <= 0 are ignored.
    prior
        G x G prior (non-zero = edge, regulator rows).
    basis
        ``"spline"`` (default) or ``"linear"``.
    n_knots
        Quantile knots of the spline basis (``n_knots + 1`` columns per gene).

    Returns
    -------
    Signed G x G matrix (regulator rows), zero diagonal.
    """
    if basis not in ("linear", "spline"):
        raise ConfigError(
            f"basis must be 'linear' or 'spline', got {basis!r}",
            field="basis",
            fix="basis='spline' (default)",
        )
    if n_knots < 2:
        raise ConfigError("n_knots must be >= 2", field="n_knots", fix="e.g. n_knots=4")
    dt = np.asarray(dt, dtype=np.float64)
    keep = dt > 0
    mid = 0.5 * (np.asarray(x0, dtype=np.float64)[keep] + np.asarray(x1, dtype=np.float64)[keep])
    vel = (np.asarray(x1)[keep] - np.asarray(x0)[keep]) / dt[keep, None]
    pr = np.asarray(prior) != 0
    lin = _partial_r2(_additive_basis(mid, "linear", n_knots), vel, pr)
    sign = np.sign(_linear_partial_correlation(mid, vel, pr))
    sign[sign == 0] = 1.0
    r2 = lin if basis == "linear" else _partial_r2(_additive_basis(mid, basis, n_knots), vel, pr)
    out = np.sqrt(r2) * sign
    np.fill_diagonal(out, 0.0)
    return out


def _linear_partial_correlation(mid: np.ndarray, vel: np.ndarray, pr: np.ndarray) -> np.ndarray:
    """Sign source of :func:`conditional_evidence`: partial correlations in the linear model."""
    n, g = mid.shape
    xc = mid - mid.mean(0)
    out = np.zeros((g, g))
    for j in range(g):
        regs = [i for i in np.flatnonzero(pr[:, j]) if i != j]
        base = [j, *regs]
        a = xc[:, base]
        q, _ = np.linalg.qr(a)
        y = vel[:, j] - vel[:, j].mean()
        res_y = y - q @ (q.T @ y)
        rx = xc - q @ (q.T @ xc)
        out[:, j] = rx.T @ res_y  # the sign of the added regulator's partial correlation
        if regs:
            coef, *_ = np.linalg.lstsq(a, y, rcond=None)
            out[regs, j] = coef[1:]
    np.fill_diagonal(out, 0.0)
    return out
