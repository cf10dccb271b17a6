"""Reader for BEELINE's input format (ExpressionData.csv, PseudoTime.csv, refNetwork.csv).

BEELINE (Pratapa et al. 2020) and BoolODE write one folder per dataset: ``ExpressionData.csv``
(genes x cells), ``PseudoTime.csv`` (cells x lineages, one ``PseudoTime<k>`` column per lineage,
NA off-lineage) and optionally ``refNetwork.csv`` (``Gene1,Gene2[,Type]``: Gene1 regulates Gene2,
``+`` activation, ``-`` repression).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biostruct.errors import DataFormatError

__all__ = ["read_beeline"]


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataFormatError(
            f"cannot read {path.name} ({exc})",
            field=str(path),
            fix="pass a BEELINE dataset folder (ExpressionData.csv, PseudoTime.csv)",
        ) from exc


def read_beeline(folder: str | Path) -> Any:
    """Read a BEELINE/BoolODE dataset folder into an AnnData (cells x genes).

    Returns
    -------
    AnnData with ``X`` the expression, one obs column per ``PseudoTime.csv`` column (NaN off the
    lineage; ``uns["pseudotime_keys"]`` lists them, ready for
    ``bs.tl.infer_grn(adata, time_key=adata.uns["pseudotime_keys"])``), and, when
    ``refNetwork.csv`` exists, ``varp["truth"]``: the signed reference network (regulator rows;
    +1 / -1, or 1 without a Type column).
    """
    import anndata as ad

    folder = Path(folder)
    expr = _read_csv(folder / "ExpressionData.csv", index_col=0)
    pt = _read_csv(folder / "PseudoTime.csv", index_col=0)
    missing = sorted(set(expr.columns) - set(pt.index))
    if missing:
        raise DataFormatError(
            f"{len(missing)} cells of ExpressionData.csv have no row in PseudoTime.csv "
            f"(e.g. {missing[0]!r})",
            field=str(folder / "PseudoTime.csv"),
            fix="give every cell a pseudotime row (NA where it is off a lineage)",
        )
    adata = ad.AnnData(np.asarray(expr.T.values, dtype=np.float32))
    adata.obs_names = [str(c) for c in expr.columns]
    adata.var_names = [str(g) for g in expr.index]
    keys = [str(c) for c in pt.columns]
    for c in pt.columns:
        adata.obs[str(c)] = pd.to_numeric(pt.loc[adata.obs_names, c], errors="coerce").values
    adata.uns["pseudotime_keys"] = np.array(keys, dtype=object)
    ref_path = folder / "refNetwork.csv"
    if ref_path.exists():
        ref = _read_csv(ref_path)
        if not {"Gene1", "Gene2"} <= set(ref.columns):
            raise DataFormatError(
                "refNetwork.csv needs columns Gene1, Gene2 (and optionally Type)",
                field=str(ref_path),
                fix="use BEELINE's header Gene1,Gene2,Type",
            )
        index = {g: i for i, g in enumerate(adata.var_names)}
        truth = np.zeros((adata.n_vars, adata.n_vars), dtype=np.float32)
        for row in ref.itertuples(index=False):
            s, t = str(row.Gene1), str(row.Gene2)
            if s in index and t in index:
                sign = -1.0 if getattr(row, "Type", "+") == "-" else 1.0
                truth[index[s], index[t]] = sign
        adata.varp["truth"] = truth
    return adata
