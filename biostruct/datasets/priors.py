"""Read prior-knowledge networks and align them to a gene order.

A prior is returned as a dense ``G x G`` float64 matrix: row = regulator, column = target,
in the order of the given ``var_names``; the value is the signed weight (0 = no edge).

Accepted sources
----------------
- a dense ``G x G`` CSV with no header (the DASH/PHOENIX files), in ``var_names`` order;
- a labelled dense CSV (header row of target names, first column of regulator names);
- an edge list CSV with a header: ``from,to[,sign|weight|...]`` or decoupler-style
  ``source,target[,weight]`` (an ``activation`` TRUE/FALSE column gives the sign);
- the same as in-memory objects: a ``numpy`` array or a ``pandas`` DataFrame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from biostruct.errors import PriorError

__all__ = ["read_prior", "edges_to_matrix", "matrix_to_edges"]

_SRC_COLS = ("source", "from", "regulator", "tf")
_TGT_COLS = ("target", "to")
_WEIGHT_COLS = ("weight", "sign", "mor", "value", "score")

PriorSource = str | Path | np.ndarray | pd.DataFrame


def _field(source: object) -> str:
    return str(source) if isinstance(source, str | Path) else f"prior ({type(source).__name__})"


def _is_number(text: str) -> bool:
    try:
        float(text.strip().strip('"'))
    except ValueError:
        return False
    return True


def _find_col(columns: Sequence[str], options: Sequence[str]) -> str | None:
    lower = {str(c).strip().lower(): c for c in columns}
    for o in options:
        if o in lower:
            return lower[o]
    return None


def _unknown_error(
    unknown: list[str], n_edges_bad: int, n_edges: int, field: str, what: str
) -> PriorError:
    shown = ", ".join(repr(g) for g in unknown[:5])
    more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
    return PriorError(
        f"{len(unknown)} gene(s) of the prior are not in adata.var_names: {shown}{more}; "
        f"they touch {n_edges_bad} of {n_edges} {what}",
        field=field,
        fix="check the gene naming (symbols vs Ensembl IDs, case), or pass missing='drop' to "
        "ignore prior entries with unknown genes.",
    )


def edges_to_matrix(
    edges: pd.DataFrame,
    var_names: Sequence[str],
    *,
    missing: Literal["raise", "drop"] = "raise",
    field: str = "prior",
) -> np.ndarray:
    """Turn an edge list into a dense ``G x G`` matrix aligned to ``var_names``.

    Parameters
    ----------
    edges
        Columns ``source``/``from`` (regulator), ``target``/``to``, and optionally a weight
        column (``weight``, ``sign``, ``mor``, ``value`` or ``score``) or an ``activation``
        TRUE/FALSE column (sign +1/-1, multiplied with the weight when both exist). Without
        either, every edge has weight 1.
    var_names
        Gene order of the rows and columns of the result.
    missing
        ``"raise"``: a gene not in ``var_names`` raises :class:`PriorError`; ``"drop"``: edges
        with such genes are skipped.
    field
        Name used in error messages.

    Returns
    -------
    numpy.ndarray
        float64 ``G x G``, row = regulator, column = target.
    """
    src_col = _find_col(edges.columns, _SRC_COLS)
    tgt_col = _find_col(edges.columns, _TGT_COLS)
    if src_col is None or tgt_col is None:
        raise PriorError(
            f"edge list needs a regulator and a target column, got columns {list(edges.columns)}",
            field=field,
            fix="name the columns 'source,target[,weight]' or 'from,to[,sign]'.",
        )
    w_col = _find_col(edges.columns, _WEIGHT_COLS)
    if w_col is not None:
        weight = pd.to_numeric(edges[w_col], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(weight).all():
            row = int(np.flatnonzero(~np.isfinite(weight))[0])
            raise PriorError(
                f"non-numeric or missing weight {edges[w_col].iloc[row]!r} in edge {row + 1}",
                field=f"{field}, column {w_col!r}",
                fix="give every edge a finite numeric weight.",
            )
    else:
        weight = np.ones(len(edges), dtype=np.float64)
    act_col = _find_col(edges.columns, ("activation",))
    if act_col is not None:
        act = edges[act_col].astype(str).str.strip().str.upper()
        ok = act.isin(["TRUE", "FALSE", "1", "0"])
        if not ok.all():
            row = int(np.flatnonzero(~ok.to_numpy())[0])
            raise PriorError(
                f"activation must be TRUE/FALSE, got {edges[act_col].iloc[row]!r} in edge {row + 1}",
                field=f"{field}, column {act_col!r}",
                fix="use TRUE for activation and FALSE for repression.",
            )
        weight = weight * np.where(act.isin(["TRUE", "1"]).to_numpy(), 1.0, -1.0)

    names = pd.Index([str(v) for v in var_names])
    if not names.is_unique:
        raise PriorError(
            "var_names are not unique",
            field="var_names",
            fix="call adata.var_names_make_unique() first.",
        )
    src = edges[src_col].astype(str).str.strip().to_numpy()
    tgt = edges[tgt_col].astype(str).str.strip().to_numpy()
    i = names.get_indexer(src)
    j = names.get_indexer(tgt)
    bad = (i < 0) | (j < 0)
    if bad.any():
        if missing == "raise":
            unknown = pd.unique(np.concatenate([src[i < 0], tgt[j < 0]])).tolist()
            raise _unknown_error(unknown, int(bad.sum()), len(edges), field, "edges")
        i, j, weight = i[~bad], j[~bad], weight[~bad]
    key = i.astype(np.int64) * len(names) + j
    order = np.argsort(key, kind="stable")
    key_s, w_s = key[order], weight[order]
    dup = np.flatnonzero(key_s[1:] == key_s[:-1])
    conflict = dup[w_s[dup] != w_s[dup + 1]]
    if conflict.size:
        k = key_s[conflict[0]]
        r, c = divmod(int(k), len(names))
        raise PriorError(
            f"edge {names[r]!r} -> {names[c]!r} is listed more than once with different weights",
            field=field,
            fix="keep one row per (regulator, target) pair.",
        )
    out = np.zeros((len(names), len(names)), dtype=np.float64)
    out[i, j] = weight
    return out


def matrix_to_edges(matrix: np.ndarray, var_names: Sequence[str]) -> pd.DataFrame:
    """Non-zero cells of a ``G x G`` matrix as a decoupler-style ``source,target,weight`` table.

    Parameters
    ----------
    matrix
        ``G x G``, row = regulator, column = target.
    var_names
        Gene names of the rows/columns.

    Returns
    -------
    pandas.DataFrame
        Columns ``source``, ``target``, ``weight``, one row per non-zero cell (row-major order).
    """
    m = np.asarray(matrix)
    r, c = np.nonzero(m)
    names = np.asarray([str(v) for v in var_names], dtype=object)
    return pd.DataFrame({"source": names[r], "target": names[c], "weight": m[r, c]})


def _check_dense(mat: np.ndarray, n: int, field: str) -> np.ndarray:
    if mat.ndim != 2 or mat.shape != (n, n):
        raise PriorError(
            f"dense prior has shape {mat.shape}, but there are {n} genes in var_names",
            field=field,
            fix="give a G x G matrix in var_names order, or an edge list / labelled matrix so the "
            "genes can be matched by name.",
        )
    if not np.isfinite(mat).all():
        r, c = np.argwhere(~np.isfinite(mat))[0]
        raise PriorError(
            f"non-finite value at row {r + 1}, column {c + 1}",
            field=field,
            fix="replace NaN/inf with 0 (no edge) or a finite weight.",
        )
    return mat


def _labelled_to_matrix(df: pd.DataFrame, names: pd.Index, missing: str, field: str) -> np.ndarray:
    rows = pd.Index([str(v).strip() for v in df.index])
    cols = pd.Index([str(v).strip() for v in df.columns])
    vals = df.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(vals).all():
        r, c = np.argwhere(~np.isfinite(vals))[0]
        raise PriorError(
            f"non-numeric or missing value at regulator {rows[r]!r}, target {cols[c]!r}",
            field=field,
            fix="fill every cell with a number (0 = no edge).",
        )
    ri, ci = names.get_indexer(rows), names.get_indexer(cols)
    if (ri < 0).any() or (ci < 0).any():
        unknown = pd.unique(np.concatenate([rows[ri < 0], cols[ci < 0]])).tolist()
        n_bad = int(np.count_nonzero(vals[ri < 0])) + int(np.count_nonzero(vals[:, ci < 0]))
        if missing == "raise":
            raise _unknown_error(
                unknown, n_bad, int(np.count_nonzero(vals)), field, "non-zero entries"
            )
    keep_r, keep_c = ri >= 0, ci >= 0
    out = np.zeros((len(names), len(names)), dtype=np.float64)
    out[np.ix_(ri[keep_r], ci[keep_c])] = vals[np.ix_(keep_r, keep_c)]
    return out


def _read_prior_file(path: Path) -> pd.DataFrame | np.ndarray:
    try:
        with path.open() as fh:
            first = fh.readline()
    except OSError as exc:
        raise PriorError(
            f"cannot read prior file ({exc})", field=str(path), fix="check the path."
        ) from exc
    cells = first.rstrip("\r\n").split(",")
    if not first.strip():
        raise PriorError("the prior file is empty", field=str(path), fix="give a non-empty file.")
    if all(_is_number(c) for c in cells):
        try:
            return pd.read_csv(path, header=None, dtype=np.float64).to_numpy()
        except ValueError as exc:
            raise PriorError(
                f"dense prior has non-numeric cells or ragged rows ({exc})",
                field=str(path),
                fix="a header-less prior must be a G x G grid of numbers.",
            ) from exc
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    cols_lower = [str(c).strip().lower() for c in df.columns]
    if any(c in cols_lower for c in _SRC_COLS) and any(c in cols_lower for c in _TGT_COLS):
        return df
    # labelled dense matrix: first column holds regulator names
    return df.set_index(df.columns[0])


def read_prior(
    source: PriorSource,
    var_names: Sequence[str],
    *,
    missing: Literal["raise", "drop"] = "raise",
) -> np.ndarray:
    """Read a prior network and align it to ``var_names``.

    Parameters
    ----------
    source
        A file path or an in-memory object:

        - dense ``G x G`` CSV without header / numpy array: taken in ``var_names`` order;
        - edge list CSV or DataFrame with ``from,to[,sign]`` or ``source,target[,weight]``
          columns (``activation`` TRUE/FALSE also understood): matched by gene name;
        - labelled dense CSV (header of targets, first column of regulators) or a DataFrame
          with gene names as index and columns: matched by gene name.
    var_names
        The gene order of the result, e.g. ``adata.var_names``.
    missing
        What to do with prior genes absent from ``var_names``: ``"raise"`` (default) raises
        :class:`PriorError` naming a few of them; ``"drop"`` ignores those entries.

    Returns
    -------
    numpy.ndarray
        Dense float64 ``G x G``: row = regulator, column = target; 0 where there is no edge.

    Raises
    ------
    PriorError
        Unknown genes (with ``missing="raise"``), a dense matrix of the wrong shape,
        non-numeric or non-finite values, conflicting duplicate edges, or an empty result
        after dropping.
    """
    if missing not in ("raise", "drop"):
        raise PriorError(
            f"missing={missing!r} is not an option",
            field="missing",
            fix="use missing='raise' or missing='drop'.",
        )
    field = _field(source)
    names = pd.Index([str(v) for v in var_names])
    if not names.is_unique:
        raise PriorError(
            "var_names are not unique", field="var_names", fix="make the gene names unique."
        )
    obj: pd.DataFrame | np.ndarray
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise PriorError(
                "file not found", field=str(path), fix="check the path of the prior file."
            )
        obj = _read_prior_file(path)
    elif isinstance(source, pd.DataFrame) and (
        isinstance(source.index, pd.RangeIndex) and isinstance(source.columns, pd.RangeIndex)
    ):
        obj = source.to_numpy()  # an unlabelled matrix: taken in var_names order
    elif isinstance(source, np.ndarray | pd.DataFrame):
        obj = source
    else:
        try:
            import scipy.sparse as sp

            if sp.issparse(source):
                obj = np.asarray(source.toarray())
            else:
                raise TypeError
        except TypeError:
            raise PriorError(
                f"unsupported prior type {type(source).__name__}",
                field="prior",
                fix="pass a path, a numpy array, or a pandas DataFrame (edge list or labelled "
                "matrix).",
            ) from None

    if isinstance(obj, np.ndarray):
        out = _check_dense(np.asarray(obj, dtype=np.float64), len(names), field).copy()
    else:
        cols_lower = [str(c).strip().lower() for c in obj.columns]
        if any(c in cols_lower for c in _SRC_COLS) and any(c in cols_lower for c in _TGT_COLS):
            out = edges_to_matrix(obj, names, missing=missing, field=field)
        else:
            out = _labelled_to_matrix(obj, names, missing, field)
    if missing == "drop" and not np.any(out):
        raise PriorError(
            "no prior entry is left after dropping unknown genes",
            field=field,
            fix="check that the prior uses the same gene names as adata.var_names.",
        )
    return out
