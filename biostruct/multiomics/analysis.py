"""Analyses on a trained DAG-VAE: latents, mixture clusters, integrated clusters, kNN purity,
Bayes-factor differential analysis with posterior FDR control, and latent-substitution analysis.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from biostruct.errors import InputError
from biostruct.multiomics.data import MultiomeData
from biostruct.multiomics.module import DAGModule
from biostruct.multiomics.training import evaluating

__all__ = [
    "bayes_factor_table",
    "integrated_mixture",
    "knn_purity",
    "integrated_clusters",
    "latents",
    "merge_mixture",
    "mixture_clusters",
]


@torch.no_grad()
def latents(
    module: DAGModule,
    data: MultiomeData,
    component: str,
    device: torch.device,
    batch_size: int = 1024,
) -> dict[str, np.ndarray]:
    """Posterior means of z, log-variances, and z_hat for ``component`` (and its ancestors)."""
    needed = module.needed(component)
    zs: dict[str, list[np.ndarray]] = {"z": [], "logvar": [], "z_hat": []}
    with evaluating(module):
        for b in data.iterate(np.arange(data.n_cells), batch_size, device, shuffle=False):
            enc = module.encode_all(b, b["_batch"], needed)
            z = {c: mu for c, (mu, _) in enc.items()}
            zh = module.propagate(z)
            zs["z"].append(enc[component][0].cpu().numpy())
            zs["logvar"].append(enc[component][1].cpu().numpy())
            zs["z_hat"].append(zh[component].cpu().numpy())
    return {k: np.concatenate(v, 0) for k, v in zs.items()}


@torch.no_grad()
def mixture_clusters(module: DAGModule, component: str, z: np.ndarray) -> np.ndarray:
    """p(cluster | z) under the component's mixture prior, for posterior means ``z``."""
    prior = module.components[component].prior
    zt = torch.as_tensor(z, dtype=torch.float32, device=prior.loc.device)
    return prior.responsibilities(zt).cpu().numpy()


@torch.no_grad()
def integrated_mixture(
    module: DAGModule, component: str, max_components: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mixture that the priors of a component and its ancestors induce on its z_hat.

    z_hat = B [parts of the parents; R z] is linear, so each combination of one mixture component
    per input is a Gaussian with mean sum_i B_i m_i and covariance sum_i B_i C_i B_i^T. Only the
    ``max_components`` heaviest combinations are kept at each step.

    Returns
    -------
    weights (M,), means (M, d), covariances (M, d, d), as float64 arrays.
    """
    spec = module.graph[component]
    comp = module.components[component]
    b = comp.b_net.weight.double().cpu()
    r = comp.r_net.weight.double().cpu()
    d_parts = [*comp.parent_dims, spec.n_latent]
    blocks = torch.split(b, d_parts, dim=1)
    prior = comp.prior
    mu = prior.loc.double().cpu()
    var = prior.scale().double().cpu() ** 2
    b_own = blocks[-1] @ r
    w = torch.softmax(prior.logits.double().cpu(), -1)
    m = mu @ b_own.T
    cov = torch.einsum("ij,kj,lj->kil", b_own, var, b_own)
    for i, p in enumerate(spec.parents):
        if p in spec.conditioned_on_z:
            pp = module.components[p].prior
            pw = torch.softmax(pp.logits.double().cpu(), -1)
            pm = pp.loc.double().cpu()
            pc = torch.diag_embed(pp.scale().double().cpu() ** 2)
        else:
            pw_np, pm_np, pc_np = integrated_mixture(module, p, max_components)
            pw, pm, pc = (torch.as_tensor(a) for a in (pw_np, pm_np, pc_np))
        bi = blocks[i]
        pm = pm @ bi.T
        pc = bi @ pc @ bi.T
        w = (w[:, None] * pw[None, :]).reshape(-1)
        m = (m[:, None, :] + pm[None, :, :]).reshape(-1, m.shape[-1])
        cov = (cov[:, None] + pc[None]).reshape(-1, *cov.shape[-2:])
        if w.numel() > max_components:
            keep = torch.argsort(w, descending=True)[:max_components]
            w, m, cov = w[keep], m[keep], cov[keep]
    w = w / w.sum()
    return w.numpy(), m.numpy(), cov.numpy()


def _bc_matrix(m: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Bhattacharyya coefficients between all pairs of Gaussians (diagonal set to 0)."""
    k = len(m)
    _, ld = np.linalg.slogdet(c)
    s = 0.5 * (c[:, None] + c[None, :])
    diff = m[:, None, :] - m[None, :, :]
    _, lds = np.linalg.slogdet(s)
    sol = np.linalg.solve(s.reshape(-1, *s.shape[-2:]), diff.reshape(-1, m.shape[1], 1))
    maha = np.einsum("pi,pi->p", diff.reshape(-1, m.shape[1]), sol[..., 0]).reshape(k, k)
    db = 0.125 * maha + 0.5 * (lds - 0.5 * (ld[:, None] + ld[None, :]))
    bc = np.exp(-db)
    np.fill_diagonal(bc, 0.0)
    return bc


def merge_mixture(
    w: np.ndarray, m: np.ndarray, cov: np.ndarray, threshold: float = 0.8
) -> list[list[int]]:
    """Greedy agglomerative merging of mixture components.

    The pair with the largest Bhattacharyya coefficient is merged while it exceeds
    ``threshold``; merged components are replaced by their moment-matched Gaussian, so that a
    chain of slightly overlapping components is not collapsed into one cluster. Returns the
    groups of original component indices.
    """
    groups = [[i] for i in range(len(w))]
    w, m, cov = w.copy(), m.copy(), cov.copy()
    while len(w) > 1:
        bc = _bc_matrix(m, cov)
        i, j = np.unravel_index(np.argmax(bc), bc.shape)
        if bc[i, j] <= threshold:
            break
        wi, wj = w[i], w[j]
        wt = wi + wj
        mt = (wi * m[i] + wj * m[j]) / wt
        ct = (
            wi * (cov[i] + np.outer(m[i], m[i])) + wj * (cov[j] + np.outer(m[j], m[j]))
        ) / wt - np.outer(mt, mt)
        w[i], m[i], cov[i] = wt, mt, 0.5 * (ct + ct.T)
        groups[i] = groups[i] + groups[j]
        keep = np.arange(len(w)) != j
        w, m, cov = w[keep], m[keep], cov[keep]
        del groups[j]
    return groups


def integrated_clusters(
    module: DAGModule,
    component: str,
    z_hat: np.ndarray,
    max_components: int = 100,
    merge_threshold: float = 0.8,
) -> tuple[np.ndarray, np.ndarray]:
    """Clusters of cells on z_hat from the induced mixture, overlapping components merged.

    Components are merged agglomeratively (:func:`merge_mixture`) while the Bhattacharyya
    coefficient of the closest pair exceeds ``merge_threshold``; a cell's probability of a merged
    cluster is the sum of its members' responsibilities.

    Returns
    -------
    labels (n_cells,) consecutive ints, and probabilities (n_cells, n_clusters).
    """
    w, m, cov = integrated_mixture(module, component, max_components)
    d = m.shape[1]
    cov = cov + 1e-4 * np.eye(d)
    groups = merge_mixture(w, m, cov, merge_threshold)
    mvn = torch.distributions.MultivariateNormal(
        torch.as_tensor(m), covariance_matrix=torch.as_tensor(cov)
    )
    lp = mvn.log_prob(torch.as_tensor(z_hat, dtype=torch.float64)[:, None, :]) + torch.log(
        torch.as_tensor(w)
    )
    resp = torch.softmax(lp, -1).numpy()
    probs = np.stack([resp[:, g].sum(1) for g in groups], 1)
    raw = probs.argmax(1)
    used, labels = np.unique(raw, return_inverse=True)
    return labels, probs[:, used]


def knn_purity(embedding: np.ndarray, labels: np.ndarray, k: int = 15) -> float:
    """Mean fraction of each cell's k nearest neighbours (itself excluded) sharing its label."""
    from sklearn.neighbors import NearestNeighbors

    labels = np.asarray(labels)
    if len(labels) != len(embedding):
        raise InputError(
            f"{len(labels)} labels for {len(embedding)} cells.", field="labels", fix="align them."
        )
    k = min(k, len(labels) - 1)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(embedding)
    idx = nn.kneighbors(embedding, return_distance=False)[:, 1:]
    return float((labels[idx] == labels[:, None]).mean())


def bayes_factor_table(
    a: np.ndarray,
    b: np.ndarray,
    features: pd.Index,
    change: str,
    mode: str,
    delta: float,
    fdr_target: float,
    rng: np.random.Generator,
    n_pairs: int = 10000,
    paired: bool = False,
) -> pd.DataFrame:
    """Bayes factors from posterior draws ``a`` and ``b`` (draws x features).

    ``mode="change"`` (Boyeau et al. 2019, scvi-tools' default): the composite hypothesis
    |change| > ``delta`` with change = log2 fold change (``change="lfc"``) or difference
    (``change="difference"``); features are called with a posterior expected FDR <= ``fdr_target``.
    ``mode="vanilla"``: P(a > b) and its log odds (CAVACHON, scVI 2018).
    ``paired`` compares row i of ``a`` with row i of ``b`` instead of random pairs.
    """
    if paired:
        pa, pb = a, b
    else:
        ia = rng.integers(0, len(a), n_pairs)
        ib = rng.integers(0, len(b), n_pairs)
        pa, pb = a[ia], b[ib]
    eps = 1e-4 if change == "lfc" else 0.0
    chg = np.log2(pa + eps) - np.log2(pb + eps) if change == "lfc" else pa - pb
    out = pd.DataFrame(index=pd.Index(features, name="feature"))
    if mode == "vanilla":
        p = (pa > pb).mean(0)
        out["proba_a_gt_b"] = p
        out["bayes_factor"] = np.log(p + 1e-8) - np.log(1 - p + 1e-8)
        out["is_de"] = np.abs(out["bayes_factor"]) >= 3.2
        p_de = np.maximum(p, 1 - p)
    elif mode == "change":
        p_de = (np.abs(chg) > delta).mean(0)
        out["proba_de"] = p_de
        out["proba_not_de"] = 1 - p_de
        out["bayes_factor"] = np.log(p_de + 1e-8) - np.log(1 - p_de + 1e-8)
    else:
        raise InputError(f"unknown mode {mode!r}.", field="mode", fix="use 'change' or 'vanilla'.")
    name = "lfc" if change == "lfc" else "delta"
    out[f"{name}_mean"] = chg.mean(0)
    out[f"{name}_median"] = np.median(chg, 0)
    out[f"{name}_std"] = chg.std(0)
    out["mean1"] = a.mean(0)
    out["mean2"] = b.mean(0)
    if mode == "change":
        order = np.argsort(-p_de)
        fdr = np.cumsum(1 - p_de[order]) / np.arange(1, len(order) + 1)
        n_sel = int(np.max(np.nonzero(fdr <= fdr_target)[0], initial=-1)) + 1
        called = np.zeros(len(p_de), dtype=bool)
        called[order[:n_sel]] = True
        out["is_de_fdr"] = called
        out["expected_fdr"] = np.nan
        out.iloc[order, out.columns.get_loc("expected_fdr")] = fdr
    # many features saturate at P = 1: break ties by the size of the change
    out["_abs"] = np.abs(out[f"{name}_mean"])
    out = out.sort_values(["bayes_factor", "_abs"], ascending=False)
    return out.drop(columns="_abs")


def latent_neighbors(latent: np.ndarray, *, n_neighbors: int = 15, seed: int = 0) -> Any:
    """kNN graph of a latent as a scanpy AnnData (``obsp`` connectivities), ready for UMAP/Leiden.

    Uses scikit-learn's exact kNN: scanpy 1.11's default pynndescent path (taken above 4,096
    cells) calls ``getnnz`` on a ``csr_array``, which SciPy >= 1.15 removed.
    """
    import anndata as ad
    import scanpy as sc

    latent = np.asarray(latent, dtype=np.float32)
    tmp = ad.AnnData(np.zeros((latent.shape[0], 1), dtype=np.float32))
    tmp.obsm["Z"] = latent
    sc.pp.neighbors(
        tmp,
        use_rep="Z",
        n_neighbors=min(n_neighbors, latent.shape[0] - 1),
        random_state=seed,
        transformer="sklearn",
    )
    return tmp
