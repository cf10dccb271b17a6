"""Sparse feature-level links on a DAG edge (e.g. peaks -> genes), pruned by the shared core.

Where the link term enters the model
------------------------------------
For a link ``parent -> child`` (modalities; the parent's component is an ancestor of the
child's) the child's decoder head gets an additive term from the parent's *observed, normalised*
features ``a = encoder_input_parent(x_parent)`` (binarised accessibility for ATAC, log counts
per 10,000 for RNA, log1p for protein)::

    eta_child[:, g] = head(h)[:, g] + sum_{p in links(g)} W_gp a[:, p]

(``a`` centred by its mean over the cells), where ``eta`` is the pre-activation the likelihood turns into its mean: ``log rho`` before the
softmax for NB/ZINB/Poisson (so ``W_gp`` is a change in the gene's log mean per open peak),
the peak's log rate before the softmax for Bernoulli, the location for Gaussian and the log background mean for protein.
The likelihood of the child becomes ``p(x_child | z_hat_child, x_parent)``: the parent's
modality is observed wherever the child is trained, so conditioning on it keeps the ELBO a bound
of a proper conditional model, and it leaves the encoders and the latent hierarchy (z, z_hat,
the mixture priors) as they are. The links therefore model the *direct*, feature-level part of
the parent's influence (which peak drives which gene), while z_hat keeps the cell-state part.
``W`` starts at zero, so training starts from the model without links. Decoding without the
parent's features (``DAGModule.decode_mean`` without ``x``) leaves the term out.

Sparsity
--------
The layer stores one weight per *candidate* link (the support of the prior: peaks within
``window_kb`` of a TSS, the given matrix's non-zeros, ...). Its mask is a
:class:`biostruct.sparsity.MaskedParams` on ``weight``; pruning rounds call
:func:`biostruct.sparsity.prune_step` with the densities of a
:class:`biostruct.sparsity.IterativePlan` (``rounds`` rounds to ``1 - sparsity``, the trained
weights kept: learning-rate rewinding with the DAG-VAE's constant rate) and, for ``method:
dash``, a :class:`biostruct.sparsity.Blend` of ``Magnitude("sum")`` and ``Prior(..., "sum")``
(DASH's mixing of weight magnitude and prior, both normalised to sum 1 over the kept links).
The rounds happen during the child's annealing epochs, so the mask is final before the
early-stopped regular phase (whose best state is restored).

Weight decay on the link weights (``weight_decay``, default 1.0 in torch units) is driven by
:class:`biostruct.sparsity.WeightDecaySchedule` with :func:`biostruct.sparsity.switch_off` at the
last round, so the kept links fine-tune without it. It matters: without it the largest weights
are not the informative ones. With a log link and a rare, skewed input (an open peak), a
positive weight is penalised much more than a negative one (``exp``), so Adam's noise drifts
uninformative weights negative, and magnitude pruning then keeps them. Measured on SNARE-seq
(1,000 cells, 30 epochs, 90 % sparsity, GxR prior): without decay, 24 % of the kept weights were
positive and their median pseudobulk peak-gene correlation was 0.109 vs 0.100 for the pruned
links (permutation p 0.28; a cell-permuted input gave the same 90 % negative kept weights);
with decay 0.1 / 1 / 3 / 10: 0.189 / 0.220 / 0.225 / 0.210 vs 0.09 (p 0.0005 each).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sps
import torch
from torch import nn

import biostruct.sparsity as sp
from biostruct.errors import PriorError
from biostruct.multiomics.graph import DAGSpec, LinkSpec
from biostruct.multiomics.sparse import ScheduledPruning

__all__ = [
    "HEADS",
    "LinkCandidates",
    "LinkLayer",
    "build_candidates",
    "gene_tss",
    "link_table",
    "links_per_feature",
    "matrix_prior",
    "names_prior",
    "offsets_on",
    "parse_peaks",
    "proximity_prior",
    "table_prior",
]

#: the decoder head of each likelihood that receives the link term (its pre-activation output)
HEADS = {
    "nb": "scale_head",
    "zinb": "scale_head",
    "poisson": "scale_head",
    "bernoulli": "logit_head",
    "gaussian": "loc_head",
    "protein": "bg_head",
}

#: Columns of the links table written to ``uns[key]["links"]`` and ``links.csv``.
LINK_COLUMNS = ("link", "parent_feature", "child_feature", "weight", "sign", "distance_kb", "prior")

_PEAK = re.compile(r"^(?P<chrom>[^:_\-\s]+)[:_\-](?P<start>\d+)[_\-](?P<end>\d+)$")


@dataclass
class LinkCandidates:
    """Candidate links of one edge: parallel arrays over links (child index, parent index, ...).

    ``distance_kb`` is NaN where the coordinates are unknown (matrix, names, table priors
    without peak/TSS positions).
    """

    child_idx: np.ndarray
    parent_idx: np.ndarray
    prior: np.ndarray
    distance_kb: np.ndarray

    def __post_init__(self) -> None:
        self.child_idx = np.asarray(self.child_idx, dtype=np.int64)
        self.parent_idx = np.asarray(self.parent_idx, dtype=np.int64)
        self.prior = np.asarray(self.prior, dtype=np.float32)
        self.distance_kb = np.asarray(self.distance_kb, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.child_idx)


# ---------------------------------------------------------------------------------- coordinates
def parse_peaks(names: Sequence[str], field: str = "atac.var_names") -> pd.DataFrame:
    """Chromosome, start and end of peaks named ``chr_start_end``, ``chr:start-end`` or
    ``chr-start-end``.

    Raises
    ------
    PriorError
        Some names do not parse (the first few are named).
    """
    rows, bad = [], []
    for n in names:
        m = _PEAK.match(str(n).strip())
        if m is None:
            bad.append(str(n))
            rows.append(("", -1, -1))
        else:
            rows.append((m["chrom"], int(m["start"]), int(m["end"])))
    if bad:
        raise PriorError(
            f"{len(bad)} of {len(rows)} peak names are not coordinates (e.g. {bad[:3]}).",
            field=field,
            fix="name peaks chr_start_end, chr:start-end or chr-start-end, or use prior: matrix "
            "/ prior: table.",
        )
    return pd.DataFrame(rows, columns=["chrom", "start", "end"], index=pd.Index(names))


def _tss_from_frame(df: pd.DataFrame, where: str) -> pd.DataFrame:
    cols = {c.lower(): c for c in df.columns}
    chrom = next((cols[c] for c in ("chrom", "chr", "chromosome", "seqname") if c in cols), None)
    if chrom is not None and "tss" in cols:
        return pd.DataFrame(
            {"chrom": df[chrom].astype(str), "tss": pd.to_numeric(df[cols["tss"]])},
            index=df.index,
        )
    if chrom is not None and "start" in cols and "end" in cols:
        strand = df[cols["strand"]].astype(str) if "strand" in cols else "+"
        start, end = pd.to_numeric(df[cols["start"]]), pd.to_numeric(df[cols["end"]])
        tss = np.where(np.asarray(strand) == "-", end, start)
        return pd.DataFrame({"chrom": df[chrom].astype(str), "tss": tss}, index=df.index)
    for key in ("interval", "gene_interval", "gene_ids_interval"):
        if key in cols:
            iv = df[cols[key]].astype(str)
            ok = iv.str.match(_PEAK.pattern)
            if ok.any():
                parsed = parse_peaks(iv[ok].tolist(), f"{where}.{cols[key]}")
                strand = df.loc[ok, cols["strand"]].astype(str) if "strand" in cols else "+"
                tss = np.where(np.asarray(strand) == "-", parsed["end"], parsed["start"])
                return pd.DataFrame(
                    {"chrom": parsed["chrom"].to_numpy(), "tss": tss}, index=df.index[ok]
                )
    raise PriorError(
        f"no gene coordinates in {where} (columns: {list(df.columns)[:8]}).",
        field=f"{where}",
        fix="add columns chrom + tss (or chrom + start + end [+ strand], or a 10x 'interval' "
        "column chr:start-end), or pass tss: genes.csv (columns gene, chrom, tss) in the link.",
    )


def gene_tss(child: Any, tss: str | None = None, name: str = "rna") -> pd.DataFrame:
    """TSS of the child's features: ``DataFrame(chrom, tss)`` indexed by feature name.

    Parameters
    ----------
    child
        The child modality's AnnData.
    tss
        ``None`` (look in ``child.var``: chrom + tss, chrom + start + end [+ strand], or an
        ``interval`` column), the name of a ``var`` column holding ``chr:start-end`` or a TSS
        position next to a ``chrom`` column, or a path to a CSV table (first column the feature
        name, then chrom + tss or chrom + start + end [+ strand]).

    Raises
    ------
    PriorError
        No coordinates found, or none of the features is in the table.
    """
    if tss is not None and (tss.endswith((".csv", ".tsv", ".txt")) or Path(tss).exists()):
        path = Path(tss)
        if not path.exists():
            raise PriorError(f"{path} does not exist.", field="links.tss", fix="check the path.")
        sep = "\t" if path.suffix in (".tsv", ".txt") else ","
        table = pd.read_csv(path, sep=sep, index_col=0)
        table.index = table.index.astype(str)
        out = _tss_from_frame(table, "links.tss").reindex(pd.Index(child.var_names).astype(str))
    else:
        var = child.var
        if tss is not None:
            if tss not in var.columns:
                raise PriorError(
                    f"column {tss!r} not in {name}.var (columns: {list(var.columns)[:8]}).",
                    field="links.tss",
                    fix="name a var column, or pass a CSV path.",
                )
            var = var.rename(columns={tss: "tss" if var[tss].dtype.kind in "if" else "interval"})
        out = _tss_from_frame(var, f"{name}.var").reindex(pd.Index(child.var_names))
    if out["tss"].notna().sum() == 0:
        raise PriorError(
            f"none of the {child.n_vars} features of {name!r} has a TSS.",
            field="links.tss",
            fix="check that the table's gene names match var_names.",
        )
    return out


# ---------------------------------------------------------------------------------- priors
def proximity_prior(
    peaks: pd.DataFrame, tss: pd.DataFrame, window_kb: float = 100.0, decay_kb: float | None = None
) -> LinkCandidates:
    """Peak-gene pairs within ``window_kb`` of the gene's TSS.

    The distance is from the TSS to the nearest end of the peak (0 when the peak covers it);
    the prior weight is ``exp(-distance / decay_kb)`` (default ``decay_kb = window_kb / 2``).
    ``peaks`` comes from :func:`parse_peaks`, ``tss`` from :func:`gene_tss` (rows in the order
    of the parent's and the child's features).
    """
    decay = float(decay_kb) if decay_kb else window_kb / 2.0
    window = window_kb * 1000.0
    ci, pi, dist = [], [], []
    pstart = peaks["start"].to_numpy(np.float64)
    pend = peaks["end"].to_numpy(np.float64)
    pchrom = peaks["chrom"].astype(str).to_numpy()
    t_chrom = tss["chrom"].astype(str).to_numpy()
    t_pos = tss["tss"].to_numpy(np.float64)
    for chrom in np.unique(pchrom):
        on = np.flatnonzero(pchrom == chrom)
        order = on[np.argsort(pstart[on], kind="stable")]
        starts = pstart[order]
        max_len = float((pend[order] - starts).max()) if len(order) else 0.0
        genes = np.flatnonzero((t_chrom == chrom) & np.isfinite(t_pos))
        for g in genes:
            lo = np.searchsorted(starts, t_pos[g] - window - max_len, side="left")
            hi = np.searchsorted(starts, t_pos[g] + window, side="right")
            cand = order[lo:hi]
            d = np.maximum(0.0, np.maximum(pstart[cand] - t_pos[g], t_pos[g] - pend[cand]))
            keep = d <= window
            ci.append(np.full(int(keep.sum()), g))
            pi.append(cand[keep])
            dist.append(d[keep] / 1000.0)
    if not ci or sum(len(c) for c in ci) == 0:
        raise PriorError(
            f"no peak lies within {window_kb} kb of any TSS.",
            field="links.window_kb",
            fix="check that peaks and genes use the same chromosome names (chr1 vs 1) and "
            "genome build, or raise window_kb.",
        )
    d_kb = np.concatenate(dist)
    return LinkCandidates(np.concatenate(ci), np.concatenate(pi), np.exp(-d_kb / decay), d_kb)


def matrix_prior(matrix: Any, n_child: int, n_parent: int) -> LinkCandidates:
    """Candidates from a child x parent matrix (its non-zeros; ``|value|`` is the prior weight).

    A parent x child matrix is transposed when its shape says so (a square one is read as
    child x parent). Accepts scipy sparse, numpy arrays and DataFrames.
    """
    m = matrix.to_numpy() if isinstance(matrix, pd.DataFrame) else matrix
    m = sps.csr_matrix(m) if not sps.issparse(m) else m.tocsr()
    if m.shape == (n_child, n_parent):
        pass
    elif m.shape == (n_parent, n_child):
        m = m.T.tocsr()
    else:
        raise PriorError(
            f"the link matrix has shape {m.shape}; the edge has {n_child} child and {n_parent} "
            "parent features.",
            field="links.source",
            fix="pass a child x parent matrix over the modalities' current features (subset it "
            "the same way as the data).",
        )
    coo = m.tocoo()
    keep = coo.data != 0
    if not keep.any():
        raise PriorError("the link matrix is all zero.", field="links.source", fix="check it.")
    n = int(keep.sum())
    return LinkCandidates(coo.row[keep], coo.col[keep], np.abs(coo.data[keep]), np.full(n, np.nan))


def _norm_name(name: str) -> str:
    s = str(name).upper()
    s = re.sub(r"^(ADT|PROT|PROTEIN|AB)[_\-.]", "", s)
    s = re.sub(r"[_\-.](TOTALSEQ\w*|PROT|ADT|\d+)$", "", s)
    return "".join(ch for ch in s if ch.isalnum())


def names_prior(parent_names: Sequence[str], child_names: Sequence[str]) -> LinkCandidates:
    """Parent -> child pairs with the same name (case and ``ADT_``/``_TotalSeqB`` affixes ignored),
    e.g. CITE-seq protein ``CD19`` -> gene ``Cd19``."""
    by_name: dict[str, list[int]] = {}
    for j, n in enumerate(child_names):
        by_name.setdefault(_norm_name(n), []).append(j)
    ci, pi = [], []
    for i, n in enumerate(parent_names):
        for j in by_name.get(_norm_name(n), []):
            ci.append(j)
            pi.append(i)
    if not ci:
        raise PriorError(
            f"no parent feature name matches a child feature name (e.g. {list(parent_names)[:3]} "
            f"vs {list(child_names)[:3]}).",
            field="links.prior",
            fix="rename the features to gene symbols, or pass prior: {table: map.csv} with "
            "source,target columns.",
        )
    return LinkCandidates(ci, pi, np.ones(len(ci)), np.full(len(ci), np.nan))


def table_prior(
    table: pd.DataFrame | str | Path, parent_names: Sequence[str], child_names: Sequence[str]
) -> LinkCandidates:
    """Candidates from a ``source`` (parent feature), ``target`` (child feature)[, ``weight``]
    table (decoupler's format); rows naming unknown features are dropped."""
    if not isinstance(table, pd.DataFrame):
        path = Path(table)
        if not path.exists():
            raise PriorError(f"{path} does not exist.", field="links.source", fix="check path.")
        table = pd.read_csv(path, sep="\t" if path.suffix in (".tsv", ".txt") else ",")
    missing = [c for c in ("source", "target") if c not in table.columns]
    if missing:
        raise PriorError(
            f"the link table has no column(s) {missing} (columns: {list(table.columns)}).",
            field="links.source",
            fix="use columns source (parent feature), target (child feature), optional weight.",
        )
    pidx = pd.Index([str(n) for n in parent_names]).get_indexer(table["source"].astype(str))
    cidx = pd.Index([str(n) for n in child_names]).get_indexer(table["target"].astype(str))
    w = table["weight"].to_numpy(np.float64) if "weight" in table.columns else np.ones(len(table))
    ok = (pidx >= 0) & (cidx >= 0) & (w != 0)
    if not ok.any():
        raise PriorError(
            "no row of the link table names a parent and a child feature of the data.",
            field="links.source",
            fix="source must be parent var_names, target child var_names.",
        )
    return LinkCandidates(cidx[ok], pidx[ok], np.abs(w[ok]), np.full(int(ok.sum()), np.nan))


def _distances(cand: LinkCandidates, parent: Any, child: Any, spec: LinkSpec) -> None:
    """Fill ``cand.distance_kb`` from coordinates when both sides have them (else leave NaN)."""
    try:
        peaks = parse_peaks(list(parent.var_names))
        tss = gene_tss(child, spec.tss, spec.child)
    except PriorError:
        return
    ps, pe = peaks["start"].to_numpy(float), peaks["end"].to_numpy(float)
    t = tss["tss"].to_numpy(float)
    same = peaks["chrom"].to_numpy()[cand.parent_idx] == tss["chrom"].to_numpy()[cand.child_idx]
    tc = t[cand.child_idx]
    d = np.maximum(0.0, np.maximum(ps[cand.parent_idx] - tc, tc - pe[cand.parent_idx])) / 1000.0
    cand.distance_kb = np.where(same & np.isfinite(d), d, np.nan).astype(np.float32)


def build_candidates(
    graph: DAGSpec,
    mods: Mapping[str, Any],
    given: Mapping[str, Any] | None = None,
    uns: Mapping[str, Any] | None = None,
) -> dict[str, LinkCandidates]:
    """The candidate links of every link of ``graph``, keyed ``"parent->child"``.

    Parameters
    ----------
    graph
        A graph with ``links``.
    mods
        ``{modality: AnnData}``.
    given
        ``{"parent->child": prior}`` objects that replace a link's ``source`` (a child x parent
        matrix / DataFrame for ``matrix``, a source/target/weight DataFrame for ``table``).
    uns
        Where ``source: uns:KEY`` is looked up (the MuData's ``uns``).
    """
    given = dict(given or {})
    unknown = sorted(set(given) - {lk.name for lk in graph.links})
    if unknown:
        raise PriorError(
            f"link priors given for {unknown}, which are not links of the graph.",
            field="link_priors",
            fix=f"use keys of the graph's links: {[lk.name for lk in graph.links]}.",
        )
    out: dict[str, LinkCandidates] = {}
    for lk in graph.links:
        parent, child = mods[lk.parent], mods[lk.child]
        src: Any = given.get(lk.name, lk.source)
        if isinstance(src, str) and src.startswith("uns:"):
            key = src[4:]
            if uns is None or key not in uns:
                raise PriorError(
                    f"uns has no {key!r}.",
                    field=f"links.{lk.name}.source",
                    fix="pass the MuData that holds it, or a file path.",
                )
            src = uns[key]
        if lk.prior == "proximity":
            peaks = parse_peaks(list(parent.var_names), f"{lk.parent}.var_names")
            tss = gene_tss(child, lk.tss, lk.child)
            cand = proximity_prior(peaks, tss, lk.window_kb, lk.decay_kb)
        elif lk.prior == "matrix":
            if isinstance(src, str | Path):
                src = _read_matrix(Path(src))
            cand = matrix_prior(src, child.n_vars, parent.n_vars)
            _distances(cand, parent, child, lk)
        elif lk.prior == "names":
            cand = names_prior(list(parent.var_names), list(child.var_names))
        else:
            cand = table_prior(src, list(parent.var_names), list(child.var_names))
            _distances(cand, parent, child, lk)
        out[lk.name] = cand
    return out


def _read_matrix(path: Path) -> Any:
    if not path.exists():
        raise PriorError(f"{path} does not exist.", field="links.source", fix="check the path.")
    if path.suffix == ".npz":
        return sps.load_npz(path)
    if path.suffix == ".npy":
        return np.load(path)
    return pd.read_csv(path, index_col=0)


# ---------------------------------------------------------------------------------- the layer
class LinkLayer(ScheduledPruning, nn.Module):
    """Sparse linear map parent features -> child features over the candidate links.

    ``forward(a)[:, g] = sum_{links (g, p)} weight[link] * a[:, p]``. ``weight`` (one entry per
    candidate, zero at the start) carries a :class:`biostruct.sparsity.MaskedParams` mask
    (``masked``); :meth:`prune_round` is one :func:`biostruct.sparsity.prune_step`.
    """

    def __init__(
        self, spec: LinkSpec, n_child: int, cand: LinkCandidates | None, n_parent: int = 0
    ) -> None:
        super().__init__()
        self.spec = spec
        self.n_child = int(n_child)
        #: mean and 1 / sd of the parent's normalised features over the cells (:meth:`set_center`)
        self.register_buffer("center", torch.zeros(int(n_parent)))
        self.register_buffer("inv_sd", torch.ones(int(n_parent)))
        #: the parent's mean per-cell level (e.g. the mean open fraction of ATAC); > 0 turns on
        #: the per-cell depth normalisation of :meth:`prepare`
        self.register_buffer("depth_ref", torch.zeros(1))
        #: sd of the child's normalised features: scales |w| in the pruning score
        self.register_buffer("child_sd", torch.ones(int(n_child)))
        n = 0 if cand is None else len(cand)
        self.weight = nn.Parameter(torch.zeros(n))
        for name in ("child_idx", "parent_idx"):
            vals = np.zeros(0) if cand is None else getattr(cand, name)
            self.register_buffer(name, torch.as_tensor(vals, dtype=torch.long))
        for name in ("prior", "distance_kb"):
            vals = np.zeros(0) if cand is None else getattr(cand, name)
            self.register_buffer(name, torch.as_tensor(vals, dtype=torch.float32))
        #: the core's mask object on ``weight``
        self.masked = sp.MaskedParams.attach(self, ["weight"])
        #: one record per pruning round: epoch, density, kept links
        self.init_pruning()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        # a saved model's candidate set: resize before loading (the layer is built empty)
        key = prefix + "weight"
        for name in ("center", "inv_sd", "child_sd", "depth_ref"):
            if prefix + name in state_dict:
                setattr(
                    self,
                    name,
                    torch.zeros_like(state_dict[prefix + name], device=self.center.device),
                )
        if key in state_dict and state_dict[key].shape != self.weight.shape:
            n = state_dict[key].shape[0]
            with torch.no_grad():
                self.weight.data = torch.zeros(n, device=self.weight.device)
            for name in ("child_idx", "parent_idx", "prior", "distance_kb", "weight_mask"):
                buf = getattr(self, name)
                setattr(self, name, torch.zeros(n, dtype=buf.dtype, device=buf.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def n_links(self) -> int:
        """Number of candidate links."""
        return int(self.weight.shape[0])

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Link term ``sum_p W_gp (a_p - mean_p) / sd_p`` of every child feature (n_cells x
        n_child)."""
        a = self.prepare(a)[:, self.parent_idx]
        if self.center.numel():
            a = (a - self.center[self.parent_idx]) * self.inv_sd[self.parent_idx]
        out = a.new_zeros(a.shape[0], self.n_child)
        return out.index_add(1, self.child_idx, a * self.weight)

    def prepare(self, a: torch.Tensor) -> torch.Tensor:
        """Per-cell depth normalisation ``a * depth_ref / mean_p(a)`` when ``depth_ref > 0``.

        Used for binarised accessibility: a cell with twice the open peaks (a deeper ATAC
        library) would otherwise push every linked gene at once.
        """
        if float(self.depth_ref) <= 0:
            return a
        return a * (self.depth_ref / a.mean(-1, keepdim=True).clamp_min(1e-6))

    @torch.no_grad()
    def set_center(self, mean: torch.Tensor, sd: torch.Tensor, child_sd: torch.Tensor) -> None:
        """Standardise the parent's features by their mean and sd over the cells: a weight is
        then the change of the child's pre-activation per sd of the parent feature, comparable
        across rare and common peaks (what magnitude pruning compares), and no link acts as an
        intercept (with uncentred, non-negative inputs they drift with the decoder's bias)."""
        dev = self.center.device
        self.center = mean.detach().to(dev, torch.float32).clone()
        self.inv_sd = 1.0 / sd.detach().to(dev, torch.float32).clamp_min(1e-3)
        self.child_sd = child_sd.detach().to(dev, torch.float32).clone()

    @property
    def log_tag(self) -> str:
        """Suffix of the history columns (``link_density_<tag>``)."""
        return f"link_{{}}_{self.spec.parent}_{self.spec.child}"

    def scorer(self) -> sp.Scorer:
        """The core's scorer of ``spec.method`` (DASH: magnitude blended with the prior).

        The magnitude part scores ``|w_gp| * sd_g`` (the child feature's sd over the cells),
        as DASH scores its output layers by ``|A| * relu(m)``: a link into a barely expressed
        gene moves little of the likelihood whatever its weight.
        """
        if self.spec.method == "random":
            return sp.Random(seed=len(self.history))
        gene_sd = self.child_sd[self.child_idx]

        def transform(w: torch.Tensor) -> torch.Tensor:
            return w * gene_sd.to(w.device)

        if self.spec.method == "magnitude":
            return sp.Magnitude(transform=transform)
        lam = self.spec.prior_weight
        return sp.Blend(
            [
                (sp.Magnitude("sum", transform=transform), 1.0 - lam),
                (sp.Prior({"weight": self.prior.cpu()}, normalize="sum"), lam),
            ]
        )


@contextmanager
def offsets_on(heads: Mapping[str, nn.Module], values: Mapping[str, torch.Tensor]) -> Iterator:
    """Add ``values[m]`` to the output of ``heads[m]`` inside the block (forward hooks)."""
    handles = []
    try:
        for m, v in values.items():
            handles.append(heads[m].register_forward_hook(lambda _mod, _in, out, v=v: out + v))
        yield
    finally:
        for h in handles:
            h.remove()


# ---------------------------------------------------------------------------------- outputs
def link_table(model: Any, kept_only: bool = True) -> pd.DataFrame:
    """Tidy table of a model's links.

    Returns
    -------
    DataFrame with ``link`` (``"parent->child"``), ``parent_feature``, ``child_feature``,
    ``weight``, ``sign`` (+1/-1/0), ``distance_kb`` (NaN without coordinates), ``prior``
    (prior weight) and ``kept``; sorted by ``|weight|`` within each link. ``kept_only`` drops
    the pruned candidates.
    """
    frames = []
    for lk in model.graph.links:
        layer = model.module.link_layer(lk)
        w = layer.weight.detach().cpu().numpy().astype(np.float64)
        kept = layer.masked.mask("weight").cpu().numpy().astype(bool)
        pn = np.asarray(model.var_names[lk.parent], dtype=object)
        cn = np.asarray(model.var_names[lk.child], dtype=object)
        df = pd.DataFrame(
            {
                "link": lk.name,
                "parent_feature": pn[layer.parent_idx.cpu().numpy()].astype(str),
                "child_feature": cn[layer.child_idx.cpu().numpy()].astype(str),
                "weight": w * kept,
                "sign": np.sign(w * kept).astype(np.int8),
                "distance_kb": layer.distance_kb.cpu().numpy().astype(np.float64),
                "prior": layer.prior.cpu().numpy().astype(np.float64),
                "kept": kept,
            }
        )
        if kept_only:
            df = df[df["kept"]]
        frames.append(df.iloc[np.argsort(-np.abs(df["weight"].to_numpy()), kind="stable")])
    cols = list(LINK_COLUMNS)
    if not frames:
        return pd.DataFrame(columns=[*cols, "kept"])
    return pd.concat(frames, ignore_index=True)


def links_per_feature(
    table: pd.DataFrame, link: LinkSpec, child_names: Sequence[str]
) -> np.ndarray:
    """Number of kept links of each child feature (e.g. linked peaks per gene)."""
    sub = table[(table["link"] == link.name) & table.get("kept", True)]
    counts = sub["child_feature"].value_counts()
    return counts.reindex(pd.Index([str(n) for n in child_names])).fillna(0).astype(int).to_numpy()
