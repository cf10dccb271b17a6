"""biostruct: structure-guided models for single-cell data.

Submodules are imported on first use, so ``import biostruct as bs`` is cheap and the command line
starts quickly::

    import biostruct as bs
    adata = bs.datasets.simulate_sim690(n_trajectories=20, seed=0)
    model = bs.tl.infer_grn(adata, prior="prior")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SUBMODULES = ("datasets", "errors", "grn", "multiomics", "pl", "report", "sparsity", "tl")

__all__ = [
    "__version__",
    "datasets",
    "errors",
    "grn",
    "multiomics",
    "pl",
    "report",
    "sparsity",
    "tl",
]

if TYPE_CHECKING:  # pragma: no cover
    from biostruct import datasets, errors, grn, multiomics, pl, report, sparsity, tl


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"biostruct.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'biostruct' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
