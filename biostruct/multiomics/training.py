"""Progressive training of a DAG-VAE, one component at a time in topological order.

Per component (following the newest CAVACHON schedule, with its bugs fixed):

1. **Parent annealing** (components with parents only): the child's own contribution to z_hat is
   faded in as alpha^2 with alpha rising 0 -> 1 per iteration; ancestors are frozen.
2. **KL annealing** split by ``kl_annealing_ratio``: (a) KL to a standard normal only, its weight
   warmed up from 0 to ``std_kl_weight``; then k-means initialisation of the mixture prior on the
   posterior means; (b) a linear crossfade from the standard-normal KL to the mixture KL;
   (c) mixture KL only.
3. **Regular training** with the mixture KL, early-stopped on the held-out ELBO of the component
   (the best state is restored).

Every phase reads shuffled minibatches densified from sparse matrices. Each component gets a fresh
Adam optimiser over its own parameters only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from biostruct.errors import ConfigError, SolverError
from biostruct.multiomics.data import MultiomeData
from biostruct.multiomics.module import DAGModule

__all__ = ["TrainConfig", "evaluate_component", "train_component"]


@dataclass
class TrainConfig:
    """Training settings (all per component).

    ``max_epochs`` counts every phase of a component. Unset annealing lengths default to
    ``round(0.1 * max_epochs)`` (parent annealing, at most 10) and ``round(0.3 * max_epochs)``
    (KL annealing, at most 25). ``progress`` shows a progress bar per component (tqdm, to
    stderr); ``verbose`` prints one line per epoch.
    """

    max_epochs: int = 100
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    validation_fraction: float = 0.1
    early_stopping: bool = True
    patience: int = 10
    min_delta: float = 0.0
    n_parent_annealing_epochs: int | None = None
    n_kl_annealing_epochs: int | None = None
    kl_annealing_ratio: tuple[float, float, float] = (0.5, 0.2, 0.3)
    std_kl_weight: float = 1.0
    kmeans_init: bool = True
    grad_clip: float = 10.0
    verbose: bool = False
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_epochs < 1:
            raise ConfigError("must be >= 1.", field="max_epochs", fix="e.g. max_epochs=100")
        if self.batch_size < 2:
            raise ConfigError("must be >= 2.", field="batch_size", fix="e.g. batch_size=256")
        if not 0.0 <= self.validation_fraction < 0.9:
            raise ConfigError(
                f"must be in [0, 0.9), got {self.validation_fraction}.",
                field="validation_fraction",
                fix="e.g. 0.1",
            )
        r = tuple(float(v) for v in self.kl_annealing_ratio)
        if len(r) != 3 or min(r) < 0 or sum(r) <= 0:
            raise ConfigError(
                "needs three non-negative numbers.", field="kl_annealing_ratio", fix="(0.5,0.2,0.3)"
            )
        self.kl_annealing_ratio = r  # type: ignore[assignment]

    def n_validation(self, n_cells: int) -> int:
        """Cells held out for early stopping out of ``n_cells``."""
        return int(round(self.validation_fraction * n_cells))

    def phase_lengths(self, has_parents: bool) -> tuple[int, int, int, int, int]:
        """Epochs of (parent annealing, std-KL, crossfade, mixture-KL annealing, regular)."""
        n = self.max_epochs
        pa = self.n_parent_annealing_epochs
        pa = min(10, max(1, round(0.1 * n))) if pa is None else pa
        pa = pa if has_parents else 0
        kl = self.n_kl_annealing_epochs
        kl = min(25, max(2, round(0.3 * n))) if kl is None else kl
        pa = min(pa, max(n - 1, 0))
        kl = min(kl, max(n - pa, 0))
        r = np.asarray(self.kl_annealing_ratio) / sum(self.kl_annealing_ratio)
        a = max(1, int(round(r[0] * kl))) if kl else 0
        b = min(int(round(r[1] * kl)), kl - a)
        c = kl - a - b
        return pa, a, b, c, max(n - pa - kl, 0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kl_annealing_ratio"] = list(self.kl_annealing_ratio)
        return d


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(enabled: bool, total: int, component: str):
    """A tqdm bar over the epochs of one component (a no-op when disabled or tqdm is missing)."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return _NoBar()
    return tqdm(total=total, desc=f"dag_vae [{component}]", unit="epoch", leave=True)


@contextmanager
def evaluating(module: torch.nn.Module) -> Iterator[None]:
    """Evaluation mode (no dropout) inside the block; every submodule's mode restored after."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


@torch.no_grad()
def evaluate_component(
    module: DAGModule,
    data: MultiomeData,
    component: str,
    idx: np.ndarray,
    batch_size: int,
    device: torch.device,
    ancestor_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> dict[str, float]:
    """Mean per-cell ELBO, reconstruction and mixture KL of ``component`` on cells ``idx``."""
    sums = {"elbo": 0.0, "recon": 0.0, "kl": 0.0}
    n = 0
    mods, cache = _inputs(module, data, component, device, ancestor_cache)
    with evaluating(module):
        for b in data.iterate(idx, batch_size, device, shuffle=False, modalities=mods):
            t = module.component_loss(component, b, b["_batch"], ancestor_stats=_take(cache, b))
            sums["elbo"] += float(t.elbo.sum())
            sums["recon"] += float(t.recon.sum())
            sums["kl"] += float(t.kl_gmm.sum())
            n += t.recon.shape[0]
    return {k: v / max(n, 1) for k, v in sums.items()}


@torch.no_grad()
def ancestor_posteriors(
    module: DAGModule, data: MultiomeData, component: str, device: torch.device
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Posterior (mean, log-variance) of every ancestor of ``component`` for all cells.

    Ancestors are frozen while ``component`` trains, so this is computed once per component and
    the ancestors' modalities need not be densified again.
    """
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for p in module.graph.ancestors(component):
        mus, lvs = [], []
        comp = module.components[p]
        mods = list(comp.modalities)
        with evaluating(comp):
            for b in data.iterate(np.arange(data.n_cells), 1024, device, False, modalities=mods):
                mu, lv = comp.encode(b, b["_batch"])
                mus.append(mu)
                lvs.append(lv)
        out[p] = (torch.cat(mus), torch.cat(lvs))
    return out


def _inputs(
    module: DAGModule,
    data: MultiomeData,
    component: str,
    device: torch.device,
    cache: dict[str, tuple[torch.Tensor, torch.Tensor]] | None,
) -> tuple[list[str], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    if cache is None:
        cache = ancestor_posteriors(module, data, component, device)
    comp = module.components[component]
    mods = list(comp.modalities) + comp.ancestor_modalities + module.link_inputs(component)
    return list(dict.fromkeys(mods)), cache


def _snapshot(comp: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights (tensor clones: several times faster than ``copy.deepcopy``)."""
    return {k: v.detach().clone() for k, v in comp.state_dict().items()}


def _take(
    cache: dict[str, tuple[torch.Tensor, torch.Tensor]], b: dict[str, torch.Tensor]
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    i = b["_idx"]
    return {p: (mu[i], lv[i]) for p, (mu, lv) in cache.items()}


@torch.no_grad()
def posterior_means(
    module: DAGModule,
    data: MultiomeData,
    component: str,
    idx: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    means, variances = [], []
    comp = module.components[component]
    mods = list(comp.modalities)
    with evaluating(comp):
        for b in data.iterate(idx, batch_size, device, shuffle=False, modalities=mods):
            mu, logvar = comp.encode(b, b["_batch"])
            means.append(mu.cpu().numpy())
            variances.append(logvar.exp().cpu().numpy())
    return np.concatenate(means, 0), np.concatenate(variances, 0)


def train_component(
    module: DAGModule,
    data: MultiomeData,
    component: str,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    cfg: TrainConfig,
    device: torch.device,
    rng: np.random.Generator,
    seed: int,
    log: Callable[[dict], None],
) -> dict:
    """Run the three-phase schedule for one component; returns a summary dict."""
    comp = module.components[component]
    for p in module.parameters():
        p.requires_grad_(False)
    for p in comp.parameters():
        p.requires_grad_(True)
    params = [p for p in comp.parameters()]
    # the fused kernel does Adam's elementwise work in one pass per tensor: on the peaks-wide
    # ATAC layers the for-loop version costs about as much as the matrix products
    fused = device.type in ("cpu", "cuda")
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    has_parents = bool(module.graph[component].parents)
    pa, a, b, c, reg = cfg.phase_lengths(has_parents)
    n_batches = max(1, math.ceil(len(train_idx) / cfg.batch_size))
    plan: list[str] = (
        ["parent"] * pa + ["std"] * a + ["cross"] * b + ["gmm"] * c + ["regular"] * reg
    )
    best_state = None
    best_val = -math.inf
    bad_epochs = 0
    stopped_early = False
    t_start = time.perf_counter()
    phase_start = {ph: plan.index(ph) for ph in dict.fromkeys(plan)}
    phase_len = {"parent": pa, "std": a, "cross": b, "gmm": c, "regular": reg}
    use_val = len(val_idx) > 0
    mods, cache = _inputs(module, data, component, device, None)
    module.begin_training(component, opt, plan, n_batches)  # feature-level link pruning
    warnings: list[str] = []
    if use_val and cfg.early_stopping and len(val_idx) < 100:
        warnings.append(
            f"[{component}] early stopping watches only {len(val_idx)} validation cells; "
            "its stopping point is noisy (raise validation_fraction or use more cells)."
        )
    bar = _progress(cfg.progress, len(plan), component)
    last_good = _snapshot(comp)
    diverged = False
    best_epoch = -1
    epoch = -1
    for epoch, phase in enumerate(plan):
        t0 = time.perf_counter()
        k0 = epoch - phase_start[phase]
        sums = {"loss": 0.0, "recon": 0.0, "kl_gmm": 0.0, "kl_std": 0.0}
        n_seen = 0
        batches = data.iterate(train_idx, cfg.batch_size, device, True, rng, modalities=mods)
        for it, batch in enumerate(batches):
            frac = (k0 * n_batches + it + 1) / (phase_len[phase] * n_batches)
            alpha = min(1.0, frac) if phase == "parent" else 1.0
            if phase == "parent":
                w_std, w_gmm = cfg.std_kl_weight * min(1.0, frac), 0.0
            elif phase == "std":
                # children already warmed their standard-normal KL up during parent annealing
                ramp = 1.0 if has_parents else min(1.0, frac)
                w_std, w_gmm = cfg.std_kl_weight * ramp, 0.0
            elif phase == "cross":
                w_std, w_gmm = cfg.std_kl_weight * (1 - frac), min(1.0, frac)
            else:
                w_std, w_gmm = 0.0, 1.0
            terms = module.component_loss(
                component, batch, batch["_batch"], alpha=alpha, ancestor_stats=_take(cache, batch)
            )
            loss = (-terms.recon + w_std * terms.kl_std + w_gmm * terms.kl_gmm).mean()
            if not torch.isfinite(loss):
                if epoch == 0:
                    bar.close()
                    raise SolverError(
                        f"non-finite loss in component {component!r} in the first epoch "
                        f"({phase} phase).",
                        field="lr",
                        fix="lower lr or check the data for extreme values.",
                    )
                diverged = True
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            nb = terms.recon.shape[0]
            n_seen += nb
            sums["loss"] += float(loss.detach()) * nb
            sums["recon"] += float(terms.recon.detach().sum())
            sums["kl_gmm"] += float(terms.kl_gmm.detach().sum())
            sums["kl_std"] += float(terms.kl_std.detach().sum())
        if diverged:
            comp.load_state_dict(last_good)
            warnings.append(
                f"[{component}] training diverged (non-finite loss) at epoch {epoch} ({phase} "
                f"phase); stopped there and kept the weights of epoch {epoch - 1}. Lower lr "
                "(e.g. lr=5e-4)."
            )
            epoch -= 1
            break
        if phase == "std" and k0 == a - 1 and cfg.kmeans_init:
            zm, zv = posterior_means(module, data, component, train_idx, 1024, device)
            sub = rng.choice(len(zm), size=min(len(zm), 20000), replace=False)
            comp.prior.init_kmeans(zm[sub], seed=seed, posterior_var=zv[sub])
        link_rec = module.end_epoch(component, epoch)
        rec = {
            "component": component,
            "epoch": epoch,
            "phase": phase,
            "alpha": alpha,
            "w_std_kl": w_std,
            "w_gmm_kl": w_gmm,
            "train_loss": sums["loss"] / n_seen,
            "train_recon": sums["recon"] / n_seen,
            "train_kl": sums["kl_gmm"] / n_seen,
            "train_kl_std": sums["kl_std"] / n_seen,
            "train_elbo": (sums["recon"] - sums["kl_gmm"]) / n_seen,
            "seconds": time.perf_counter() - t0,
            **link_rec,
        }
        if use_val:
            v = evaluate_component(module, data, component, val_idx, 1024, device, cache)
            rec.update(val_elbo=v["elbo"], val_recon=v["recon"], val_kl=v["kl"])
        log(rec)
        if not all(math.isfinite(v) for v in (rec["train_loss"], rec.get("val_elbo", 0.0))):
            diverged = True
            comp.load_state_dict(last_good)
            warnings.append(
                f"[{component}] training diverged (non-finite ELBO) at epoch {epoch} ({phase} "
                f"phase); stopped there and kept the weights of epoch {epoch - 1}. Lower lr."
            )
            epoch -= 1
            break
        last_good = _snapshot(comp)
        bar.update(1)
        if use_val:
            bar.set_postfix_str(f"{phase} val ELBO {rec['val_elbo']:.1f}", refresh=False)
        if cfg.verbose:
            msg = f"[{component}] epoch {epoch:3d} {phase:8s} train ELBO {rec['train_elbo']:.2f}"
            if use_val:
                msg += f" val ELBO {rec['val_elbo']:.2f}"
            print(msg, flush=True)
        if phase == "regular" and use_val and cfg.early_stopping:
            if rec["val_elbo"] > best_val + cfg.min_delta:
                best_val = rec["val_elbo"]
                best_state = last_good
                best_epoch = epoch
                bad_epochs = 0
            else:
                bad_epochs += 1
                if bad_epochs >= cfg.patience:
                    stopped_early = True
                    break
    bar.close()
    if best_state is not None:
        comp.load_state_dict(best_state)
    for p in module.parameters():
        p.requires_grad_(True)
    n_done = epoch + 1
    if (
        not stopped_early
        and not diverged
        and use_val
        and cfg.early_stopping
        and reg > 0
        and best_epoch >= n_done - max(2, cfg.patience // 2)
    ):
        warnings.append(
            f"[{component}] the validation ELBO was still improving at the epoch cap "
            f"(best at epoch {best_epoch} of {n_done}): the component may be under-trained; "
            f"raise max_epochs (now {cfg.max_epochs})."
        )
    return {
        "component": component,
        "epochs": n_done,
        "stopped_early": stopped_early,
        "best_epoch": best_epoch,
        "warnings": warnings,
        "best_val_elbo": best_val if best_state is not None else None,
        "seconds": time.perf_counter() - t_start,
    }
