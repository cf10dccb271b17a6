"""biostruct.grn: PHOENIX-style neural-ODE gene regulatory networks pruned with DASH.

Main entry points: :func:`infer_grn` (scanpy style) and :class:`GRNModel`; the vector field
:class:`PhoenixField`; metrics in :mod:`biostruct.grn.metrics`; DASH scores and schedule in
:mod:`biostruct.grn.dash`; plots in :mod:`biostruct.grn.plotting`.
"""

from biostruct.grn import dash, metrics
from biostruct.grn.api import infer_grn
from biostruct.grn.dash import PruneSchedule
from biostruct.grn.extract import edge_table, effect_matrix, jacobian_effect, layer_sparsity
from biostruct.grn.field import PhoenixField
from biostruct.grn.methods import METHODS
from biostruct.grn.model import GRNModel
from biostruct.grn.solve import SolverConfig
from biostruct.grn.train import PruningConfig, TrainConfig, Trainer

__all__ = [
    "GRNModel",
    "METHODS",
    "PhoenixField",
    "PruneSchedule",
    "PruningConfig",
    "SolverConfig",
    "TrainConfig",
    "Trainer",
    "dash",
    "edge_table",
    "effect_matrix",
    "infer_grn",
    "jacobian_effect",
    "layer_sparsity",
    "metrics",
]
