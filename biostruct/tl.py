"""Scanpy-style tools: fit a model on a data object and write its results in place.

Each function takes the data object first, writes under ``key_added``, accepts ``copy``, and
returns the fitted model (see each function's "Returns" for every field written).
"""

from __future__ import annotations

from biostruct.grn.api import infer_grn
from biostruct.multiomics.api import dag_vae

__all__ = ["dag_vae", "infer_grn"]
