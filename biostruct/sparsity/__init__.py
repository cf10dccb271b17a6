"""Shared sparsification core (torch only).

Masks on named parameters kept in ``model.state_dict()``, importance scores (magnitude,
random, external priors, blends), score-to-mask selection, layer-wise density allocation and
random masks, iterative pruning with rewinding (IMP, WR, LRR), cyclic training (SCULPT), the
m*w reparameterisation (PILoT, Sign-In), weight-decay schedules and the PILoT controller, sign
tracking and reports. Objects are driven by the user's own training loop, in the style of
``torch.optim``.

Example
-------
>>> import torch
>>> from torch import nn
>>> from biostruct import sparsity as sp
>>> model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
>>> mp = sp.MaskedParams.attach(model, sp.select(model))
>>> dens = sp.layerwise_densities(mp.shapes(), 0.5, "erk")
>>> mp.set_masks(sp.random_masks(mp.shapes(), dens, seed=0))
>>> opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
>>> mp.sync_optimizer(opt)  # clears pruned entries' state, re-applies masks after each step
>>> new = sp.prune_step(mp, sp.Magnitude(), fraction_of_remaining=0.2)  # IMP-style round
>>> round(mp.density(), 2)
0.4
>>> print(sp.report_table(sp.sparsity_report(mp)))  # doctest: +SKIP
"""

from biostruct.sparsity.allocation import (
    layerwise_densities,
    random_masks,
    realised_densities,
    realised_density,
)
from biostruct.sparsity.cyclic import (
    STRATEGIES,
    TriangularShape,
    cycle_lengths,
    sculpt,
    triangular,
)
from biostruct.sparsity.decay import (
    PilotController,
    WeightDecaySchedule,
    constant,
    geometric,
    harmonic,
    switch_off,
)
from biostruct.sparsity.interop import from_torch_prune, to_torch_prune
from biostruct.sparsity.masking import (
    MaskedParams,
    MaskParametrization,
    export_dense,
    load_dense_state_dict,
    mask_state_keys,
    reapply_masks,
)
from biostruct.sparsity.pruner import prune_step
from biostruct.sparsity.reparam import MW, MaskWeight, split_mw
from biostruct.sparsity.report import (
    LayerSparsity,
    global_density,
    nnz_fraction_below,
    report_table,
    sparsity_report,
)
from biostruct.sparsity.rounds import IterativePlan, SignTracker, Snapshots, restart
from biostruct.sparsity.scores import Blend, Magnitude, Prior, Random, Scorer, compute_scores
from biostruct.sparsity.selection import resolve, select
from biostruct.sparsity.topk import density_after, keep_counts, topk_masks

__all__ = [
    "PilotController",
    "STRATEGIES",
    "TriangularShape",
    "WeightDecaySchedule",
    "constant",
    "cycle_lengths",
    "from_torch_prune",
    "geometric",
    "harmonic",
    "sculpt",
    "switch_off",
    "to_torch_prune",
    "triangular",
    "Blend",
    "IterativePlan",
    "LayerSparsity",
    "MaskParametrization",
    "MaskedParams",
    "MaskWeight",
    "MW",
    "Magnitude",
    "Prior",
    "Random",
    "Scorer",
    "SignTracker",
    "Snapshots",
    "compute_scores",
    "density_after",
    "export_dense",
    "global_density",
    "keep_counts",
    "load_dense_state_dict",
    "layerwise_densities",
    "mask_state_keys",
    "nnz_fraction_below",
    "prune_step",
    "random_masks",
    "realised_densities",
    "realised_density",
    "reapply_masks",
    "report_table",
    "resolve",
    "restart",
    "select",
    "sparsity_report",
    "split_mw",
    "topk_masks",
]
