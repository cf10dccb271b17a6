"""Data setup for the DAG-VAE: MuData or dict of AnnData -> checked sparse matrices + minibatches.

Matrices stay sparse (CSR, float32) on the host; each minibatch is sliced and densified on its own,
then moved to the device.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from biostruct.errors import InputError
from biostruct.multiomics.graph import DAGSpec
from biostruct.multiomics.likelihoods import _REGISTRY, register_nonzero

__all__ = ["MultiomeData", "as_modalities", "filter_empty", "setup_data"]


def as_modalities(data: object) -> dict[str, ad.AnnData]:
    """MuData or dict of AnnData -> dict of AnnData (no copy)."""
    try:
        import mudata

        if isinstance(data, mudata.MuData):
            return dict(data.mod)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(data, Mapping) and all(isinstance(v, ad.AnnData) for v in data.values()):
        if not data:
            raise InputError("no modalities given.", field="mdata", fix="pass >= 1 AnnData.")
        return {str(k): v for k, v in data.items()}
    raise InputError(
        f"expected a MuData or a dict of AnnData, got {type(data).__name__}.",
        field="mdata",
        fix="wrap single AnnData objects as {'rna': adata_rna, 'atac': adata_atac}.",
    )


def _obs_frame(data: object, mods: Mapping[str, ad.AnnData]) -> pd.DataFrame:
    obs = getattr(data, "obs", None)
    if isinstance(obs, pd.DataFrame):
        return obs
    return next(iter(mods.values())).obs


def _csr(a: ad.AnnData, layer: str | None, name: str) -> sp.csr_matrix:
    if layer is not None:
        if layer not in a.layers:
            raise InputError(
                f"layer {layer!r} not found (layers: {list(a.layers)}).",
                field=f"{name}.layers",
                fix="pass an existing layer, e.g. layer='counts' or layer={'"
                + name
                + "': 'counts'} (dag_vae/DAGVAE), or the graph's modalities."
                + name
                + ".layer; None reads X.",
            )
        x = a.layers[layer]
    else:
        x = a.X
    if x is None:
        raise InputError("X is empty.", field=f"{name}.X", fix="store the counts in X or a layer.")
    if sp.issparse(x):
        x = sp.csr_matrix(x, dtype=np.float32)
    else:
        x = sp.csr_matrix(np.asarray(x, dtype=np.float32))
    x.sum_duplicates()
    x.eliminate_zeros()
    return x


@dataclass
class MultiomeData:
    """Checked per-modality CSR matrices on shared cells, plus batch codes."""

    X: dict[str, sp.csr_matrix]
    obs_names: pd.Index
    var_names: dict[str, pd.Index]
    batch_codes: np.ndarray  # int, (n_cells,)
    batch_categories: list[str]
    obs: pd.DataFrame | None = None  # cell annotations at setup time (for groupby look-ups)

    @property
    def n_cells(self) -> int:
        return len(self.obs_names)

    @property
    def n_batch(self) -> int:
        return len(self.batch_categories)

    def minibatch(
        self, idx: np.ndarray, device: torch.device, modalities: list[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Densify rows ``idx`` of the modalities (default all).

        Extra keys: ``"_batch"`` (batch one-hot) and ``"_idx"`` (the row indices).
        """
        mods = self.X if modalities is None else {m: self.X[m] for m in modalities}
        out = {}
        for m, x in mods.items():
            sub = x[idx]
            dense = torch.from_numpy(sub.toarray()).to(device, non_blocking=True)
            rows = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
            cols, keep = sub.indices, sub.data != 0
            if not keep.all():
                rows, cols = rows[keep], cols[keep]
            register_nonzero(
                dense,
                torch.from_numpy(rows.astype(np.int64)).to(device),
                torch.from_numpy(cols.astype(np.int64)).to(device),
            )
            out[m] = dense
        codes = torch.from_numpy(self.batch_codes[idx]).to(device)
        out["_batch"] = torch.nn.functional.one_hot(codes, self.n_batch).float()
        out["_idx"] = torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(device)
        return out

    def iterate(
        self,
        idx: np.ndarray,
        batch_size: int,
        device: torch.device,
        shuffle: bool,
        rng: np.random.Generator | None = None,
        modalities: list[str] | None = None,
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Minibatches over ``idx`` (shuffled with ``rng`` when ``shuffle``)."""
        order = rng.permutation(idx) if shuffle and rng is not None else np.asarray(idx)
        for s in range(0, len(order), batch_size):
            yield self.minibatch(np.sort(order[s : s + batch_size]), device, modalities)


def setup_data(data: object, graph: DAGSpec, batch_key: str | None = None) -> MultiomeData:
    """Check the data against the graph and collect CSR matrices.

    Raises
    ------
    GraphError
        A modality of the graph is missing from the data.
    InputError
        Duplicated cell names; cells not shared between modalities; NaN/inf; negative or non-integer values for a count
        likelihood; all-zero cells or features; unknown ``batch_key``.
    """
    mods = as_modalities(data)
    graph.validate_modalities(mods)
    names = list(graph.modalities)
    for m in names:
        if not mods[m].obs_names.is_unique:
            dup = mods[m].obs_names[mods[m].obs_names.duplicated()][0]
            raise InputError(
                f"cell names are not unique (e.g. {str(dup)!r}), so results cannot be matched "
                "to their cells.",
                field=f"{m}.obs_names",
                fix="make them unique in every modality first, e.g. "
                "adata.obs_names_make_unique() (the same names in each modality).",
            )
    first = mods[names[0]].obs_names
    for m in names[1:]:
        other = mods[m].obs_names
        if len(other) != len(first) or not other.equals(first):
            missing = len(first.difference(other)) + len(other.difference(first))
            if missing:
                raise InputError(
                    f"modalities {names[0]!r} and {m!r} do not share the same cells "
                    f"({missing} cells are in only one of them). Mosaic data (cells missing a "
                    "modality) is not supported yet.",
                    field=f"{m}.obs_names",
                    fix="keep the shared cells, e.g. muon.pp.intersect_obs(mdata).",
                )
    X: dict[str, sp.csr_matrix] = {}
    var_names: dict[str, pd.Index] = {}
    for m in names:
        a = mods[m]
        if not a.obs_names.equals(first):
            a = a[first]
        spec = graph.modalities[m]
        x = _csr(a, spec.layer, m)
        _check_values(x, m, spec.likelihood)
        X[m] = x
        var_names[m] = pd.Index(a.var_names)
    obs = _obs_frame(data, mods)
    codes, cats = _batch(obs, mods, batch_key, first)
    return MultiomeData(X, pd.Index(first), var_names, codes, cats, obs.reindex(first))


def _check_values(x: sp.csr_matrix, m: str, likelihood: str) -> None:
    if x.shape[1] == 0:
        raise InputError(
            "the modality has no features (0 columns).",
            field=f"{m}.var",
            fix="check the feature filtering that emptied it, or leave the modality out of "
            "the graph.",
        )
    lik = _REGISTRY[likelihood]
    v = x.data
    if not np.isfinite(v).all():
        n = int((~np.isfinite(v)).sum())
        raise InputError(
            f"{n} NaN/inf values.", field=f"{m}.X", fix="remove or impute them before fitting."
        )
    if lik.non_negative and (v < 0).any():
        raise InputError(
            f"{int((v < 0).sum())} negative values, but likelihood {likelihood!r} needs counts.",
            field=f"{m}.X",
            fix=f"pass raw counts, e.g. layer='counts' or layer={{'{m}': 'counts'}} in "
            f"dag_vae/DAGVAE (or modalities.{m}.layer in the graph), or use likelihood 'gaussian'.",
        )
    if lik.integer_counts and (np.abs(v - np.round(v)) > 1e-4).any():
        n = int((np.abs(v - np.round(v)) > 1e-4).sum())
        raise InputError(
            f"{n} non-integer values, but likelihood {likelihood!r} needs raw integer counts.",
            field=f"{m}.X",
            fix=f"pass raw counts (not normalised/log data), e.g. layer='counts' or "
            f"layer={{'{m}': 'counts'}} in dag_vae/DAGVAE (or modalities.{m}.layer in the "
            "graph), or use likelihood 'gaussian'.",
        )
    if likelihood == "gaussian":
        return
    row = np.diff(x.indptr)
    n_cells = int((row == 0).sum())
    if n_cells:
        raise InputError(
            f"{n_cells} of {x.shape[0]} cells have no counts in this modality.",
            field=f"{m}.X",
            fix="drop them with biostruct.multiomics.filter_empty(mdata).",
        )
    col = np.bincount(x.indices, minlength=x.shape[1])
    n_feat = int((col == 0).sum())
    if n_feat:
        raise InputError(
            f"{n_feat} of {x.shape[1]} features are zero in every cell.",
            field=f"{m}.var",
            fix="drop them with biostruct.multiomics.filter_empty(mdata).",
        )


def _batch(
    obs: pd.DataFrame, mods: Mapping[str, ad.AnnData], key: str | None, cells: pd.Index
) -> tuple[np.ndarray, list[str]]:
    if key is None:
        return np.zeros(len(cells), dtype=np.int64), ["_all"]
    col = None
    if key in obs.columns:
        col = obs[key].reindex(cells)
    else:
        for a in mods.values():
            if key in a.obs.columns:
                col = a.obs[key].reindex(cells)
                break
    if col is None:
        raise InputError(
            f"batch column {key!r} not found in obs.",
            field="batch_key",
            fix=f"use one of {list(obs.columns)[:20]} or None.",
        )
    if col.isna().any():
        raise InputError(
            f"{int(col.isna().sum())} cells have no batch.", field=f"obs.{key}", fix="fill them."
        )
    cat = pd.Categorical(col.astype(str))
    return cat.codes.astype(np.int64), [str(c) for c in cat.categories]


def filter_empty(data: object, modalities: list[str] | None = None) -> object:
    """Drop all-zero features and the cells that have no counts in some modality.

    Parameters
    ----------
    data
        MuData or dict of AnnData (shared cells).
    modalities
        Modalities to check (default all).

    Returns
    -------
    A new object of the same kind (MuData or dict), with copies of the kept data.
    """
    mods = as_modalities(data)
    check = modalities or list(mods)
    cells = next(iter(mods.values())).obs_names
    keep_cells = np.ones(len(cells), dtype=bool)
    for m in check:
        a = mods[m]
        x = a.X if sp.issparse(a.X) else sp.csr_matrix(np.asarray(a.X))
        rows = np.asarray((x != 0).sum(1)).ravel() > 0
        pos = pd.Series(rows, index=a.obs_names).reindex(cells).fillna(False).to_numpy(bool)
        keep_cells &= pos
    kept = cells[keep_cells]
    out: dict[str, ad.AnnData] = {}
    for m, a in mods.items():
        a = a[kept]
        if m in check:
            x = a.X if sp.issparse(a.X) else sp.csr_matrix(np.asarray(a.X))
            cols = np.asarray((x != 0).sum(0)).ravel() > 0
            a = a[:, cols]
        out[m] = a.copy()
    try:
        import mudata

        if isinstance(data, mudata.MuData):
            with mudata.set_options(pull_on_update=False):  # mudata 0.4's behaviour, no notice
                md = mudata.MuData(out)
            extra = [c for c in data.obs.columns if c not in md.obs.columns]
            for c in extra:
                md.obs[c] = data.obs[c].reindex(md.obs_names)
            return md
    except ImportError:  # pragma: no cover
        pass
    return out
