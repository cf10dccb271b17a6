"""Read and write the DASH/PHOENIX trajectory CSV format.

The format (see ``/work/shared/data/README.md``): row 1 is ``G,N`` (genes, trajectories) padded
with empty fields; then, for each trajectory, ``G`` rows (one gene each, its values over that
trajectory's time points) followed by one row of time points. Empty cells are NaN; trajectories
with fewer time points than the longest are right-padded with empty cells. Gene names are not in
the file: they come from a separate gene-names file, in row order.

In memory a trajectory set is an AnnData with one observation per (trajectory, time point):
``obs["trajectory"]`` (categorical of strings ``"0"``, ``"1"``, ...), ``obs["time"]`` (float64)
and ``X`` (float64, observations x genes).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from biostruct.errors import DataFormatError, InputError

if TYPE_CHECKING:  # pragma: no cover
    import anndata as ad

__all__ = ["read_gene_names", "read_trajectories", "write_trajectories"]

_FORMAT_FIX = (
    "The trajectory CSV format is: row 1 'G,N'; then per trajectory G gene rows followed by one "
    "row of time points; shorter trajectories right-padded with empty cells."
)


def read_gene_names(path: str | Path) -> list[str]:
    """Read a gene-names file: one column with a header line (e.g. ``"x"`` or ``gene``).

    Parameters
    ----------
    path
        CSV file with a one-line header and one gene name per line (quotes and CRLF allowed).

    Returns
    -------
    list of str
        The names in file order.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFormatError(
            f"cannot read gene names ({exc})",
            field=str(path),
            fix="give a CSV with a header line and one gene name per line.",
        ) from exc
    if df.shape[1] < 1 or df.shape[0] == 0:
        raise DataFormatError(
            "no gene names found",
            field=str(path),
            fix="give a CSV with a header line and one gene name per line.",
        )
    names = [s.strip() for s in df.iloc[:, -1].tolist()]
    empty = [i for i, s in enumerate(names) if not s]
    if empty:
        raise DataFormatError(
            f"empty gene name on line {empty[0] + 2}",
            field=str(path),
            fix="remove blank lines or give every gene a name.",
        )
    return names


def _resolve_names(
    gene_names: str | Path | Sequence[str] | None, n_genes: int, path: Path
) -> list[str]:
    if gene_names is None:
        return [f"gene_{i}" for i in range(n_genes)]
    if isinstance(gene_names, str | Path):
        names = read_gene_names(gene_names)
        source = str(gene_names)
    else:
        names = [str(g) for g in gene_names]
        source = "gene_names"
    if len(names) != n_genes:
        raise DataFormatError(
            f"{len(names)} gene names given in {source}, but the file's header declares "
            f"G={n_genes} genes",
            field=f"{path}, line 1",
            fix="pass the gene-names file that belongs to this trajectory file.",
        )
    if len(set(names)) != len(names):
        dup = pd.Index(names)[pd.Index(names).duplicated()].unique()[:3].tolist()
        raise DataFormatError(
            f"duplicated gene names in {source}: {dup}",
            field=str(path),
            fix="make the gene names unique.",
        )
    return names


def _bad_cell(text_lines: list[str], first_line: int) -> tuple[int, int, str] | None:
    """Locate the first non-numeric cell; lines are 1-based in the file (slow path only)."""
    for k, line in enumerate(text_lines):
        for j, cell in enumerate(line.split(",")):
            c = cell.strip().strip('"')
            if c == "" or c.upper() == "NA" or c.lower() == "nan":
                continue
            try:
                float(c)
            except ValueError:
                return first_line + k, j + 1, cell
    return None


def read_trajectories(
    path: str | Path, gene_names: str | Path | Sequence[str] | None = None
) -> ad.AnnData:
    """Read a trajectory CSV file into an AnnData.

    Parameters
    ----------
    path
        The trajectory CSV file (``G,N`` header, gene rows, one time row per trajectory).
    gene_names
        A gene-names file (header line, one name per line), a sequence of names, or ``None``
        for ``gene_0``, ``gene_1``, ...

    Returns
    -------
    AnnData
        ``n_obs`` = total time points over all trajectories, ``n_vars`` = G. ``X`` float64;
        ``obs["trajectory"]`` categorical strings ``"0"`` .. ``"N-1"`` in file order;
        ``obs["time"]`` float64; ``var_names`` the gene names. Padding cells are dropped.

    Raises
    ------
    DataFormatError
        Ragged rows, non-numeric cells, a NaN inside a trajectory, a ``G,N`` header that
        disagrees with the number of rows, or a gene-name count that differs from ``G``; the
        message names the file and the 1-based line.
    """
    import anndata as ad

    path = Path(path)
    try:
        raw = path.read_text()
    except OSError as exc:
        raise DataFormatError(
            f"cannot read file ({exc})", field=str(path), fix="check the path."
        ) from exc
    lines = raw.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataFormatError("the file is empty", field=str(path), fix=_FORMAT_FIX)

    head = [c.strip().strip('"') for c in lines[0].split(",")]
    try:
        n_genes, n_traj = int(head[0]), int(head[1])
        if any(c for c in head[2:]):
            raise ValueError
    except (ValueError, IndexError) as exc:
        raise DataFormatError(
            f"line 1 must be 'G,N' (genes, trajectories) followed by empty fields, got "
            f"{lines[0][:60]!r}",
            field=f"{path}, line 1",
            fix=_FORMAT_FIX,
        ) from exc
    if n_genes < 1 or n_traj < 1:
        raise DataFormatError(
            f"line 1 declares G={n_genes}, N={n_traj}; both must be >= 1",
            field=f"{path}, line 1",
            fix=_FORMAT_FIX,
        )
    expected = 1 + n_traj * (n_genes + 1)
    if len(lines) != expected:
        raise DataFormatError(
            f"line 1 declares G={n_genes} genes and N={n_traj} trajectories, so the file must "
            f"have 1 + N*(G+1) = {expected} rows, but it has {len(lines)}",
            field=f"{path}, line 1",
            fix="correct the G,N header or the number of gene rows per trajectory.",
        )
    widths = np.fromiter((ln.count(",") + 1 for ln in lines), dtype=np.int64, count=len(lines))
    n_fields = int(widths[1])
    # the header may be padded to the width of the rows, or be just 'G,N'
    bad = np.flatnonzero(widths[1:] != n_fields) + 1
    if widths[0] not in (2, n_fields):
        bad = np.concatenate([[0], bad])
    if bad.size:
        k = int(bad[0])
        raise DataFormatError(
            f"ragged rows: line {k + 1} has {widths[k]} fields but line 2 has {n_fields}",
            field=f"{path}, line {k + 1}",
            fix="give every row the same number of comma-separated fields (pad with empty cells).",
        )
    names = _resolve_names(gene_names, n_genes, path)

    body = "\n".join(lines[1:])
    try:
        values = pd.read_csv(
            io.StringIO(body),
            header=None,
            dtype=np.float64,
            float_precision="round_trip",
            na_values=["", "NA", "NaN", "nan"],
            keep_default_na=False,
        ).to_numpy(dtype=np.float64)
    except (ValueError, pd.errors.ParserError) as exc:
        loc = _bad_cell(lines[1:], 2)
        if loc is None:
            raise DataFormatError(
                f"cannot parse the values ({exc})", field=str(path), fix=_FORMAT_FIX
            ) from exc
        line_no, col, cell = loc
        raise DataFormatError(
            f"non-numeric cell {cell!r} at line {line_no}, column {col}",
            field=f"{path}, line {line_no}",
            fix="every cell must be a number or empty.",
        ) from exc

    if np.isinf(values).any():
        r, c = np.argwhere(np.isinf(values))[0]
        raise DataFormatError(
            f"infinite value at line {r + 2}, column {c + 1}",
            field=f"{path}, line {r + 2}",
            fix="every cell must be a finite number or empty.",
        )
    values = values.reshape(n_traj, n_genes + 1, n_fields)
    blocks: list[np.ndarray] = []
    times: list[np.ndarray] = []
    traj_ids: list[np.ndarray] = []
    for k in range(n_traj):
        time_line = 1 + (k + 1) * (n_genes + 1)  # 1-based line of this trajectory's time row
        t = values[k, n_genes]
        finite = ~np.isnan(t)
        n_t = int(finite.sum())
        if n_t == 0:
            raise DataFormatError(
                f"trajectory {k} has no time points (line {time_line} is empty)",
                field=f"{path}, line {time_line}",
                fix="the row after each block of G gene rows must hold the time points.",
            )
        if not finite[:n_t].all():
            raise DataFormatError(
                f"the time row of trajectory {k} has an empty cell at column "
                f"{int(np.flatnonzero(~finite)[0]) + 1} before its last time point",
                field=f"{path}, line {time_line}",
                fix="time points must be contiguous from the first column; pad only at the end.",
            )
        x = values[k, :n_genes]
        inside = np.isnan(x[:, :n_t])
        if inside.any():
            g, j = np.argwhere(inside)[0]
            line = time_line - n_genes + int(g)
            raise DataFormatError(
                f"missing value inside trajectory {k} (gene {names[g]!r}, time point {j + 1} of "
                f"{n_t}) at line {line}, column {j + 1}",
                field=f"{path}, line {line}",
                fix="fill in the value; empty cells are allowed only as right padding after a "
                "trajectory's last time point.",
            )
        beyond = ~np.isnan(x[:, n_t:])
        if beyond.any():
            g, j = np.argwhere(beyond)[0]
            line = time_line - n_genes + int(g)
            raise DataFormatError(
                f"trajectory {k} has {n_t} time points but line {line} has a value in column "
                f"{n_t + j + 1}",
                field=f"{path}, line {line}",
                fix="give every value a time point in the trajectory's time row, or remove it.",
            )
        blocks.append(x[:, :n_t].T)
        times.append(t[:n_t])
        traj_ids.append(np.full(n_t, k))

    X = np.ascontiguousarray(np.concatenate(blocks, axis=0), dtype=np.float64)
    tid = np.concatenate(traj_ids)
    idx_in = np.concatenate([np.arange(len(t)) for t in times])
    cats = [str(k) for k in range(n_traj)]
    obs = pd.DataFrame(
        {
            "trajectory": pd.Categorical.from_codes(tid, categories=cats),
            "time": np.concatenate(times).astype(np.float64),
        },
        index=pd.Index([f"traj{k}_t{i}" for k, i in zip(tid, idx_in)]),
    )
    var = pd.DataFrame(index=pd.Index(names))
    return ad.AnnData(X=X, obs=obs, var=var)


def _format_block(rows: np.ndarray, width: int) -> list[str]:
    """Format rows of floats as CSV lines; numpy's str() is the shortest round-trip repr."""
    cells = rows.astype(np.float64).astype(str)
    cells[np.isnan(rows)] = ""
    pad = "," * (width - rows.shape[1])
    return [",".join(r) + pad for r in cells.tolist()]


def write_trajectories(
    adata: ad.AnnData,
    path: str | Path,
    *,
    trajectory_key: str = "trajectory",
    time_key: str = "time",
) -> None:
    """Write an AnnData as a trajectory CSV file (atomically).

    Trajectories are written in order of first appearance in ``adata.obs[trajectory_key]``,
    observations within a trajectory in their ``adata`` order. Shorter trajectories are
    right-padded with empty cells. Values are written with Python's shortest round-trip float
    representation, so ``read_trajectories`` gives back exactly the same float64 numbers.
    Gene names are not part of the format; write ``adata.var_names`` separately if needed.

    Parameters
    ----------
    adata
        Observations x genes; ``X`` dense or sparse, without NaN.
    path
        Output file; written to a temporary name in the same folder, then renamed.
    trajectory_key, time_key
        Columns of ``adata.obs`` holding the trajectory label and the time of each observation.

    Raises
    ------
    InputError
        A key is missing from ``adata.obs``, or ``X``/time hold NaN.
    """
    import scipy.sparse as sp

    for key in (trajectory_key, time_key):
        if key not in adata.obs:
            raise InputError(
                f"column {key!r} not in adata.obs (columns: {list(adata.obs.columns)[:10]})",
                field=f"obs[{key!r}]",
                fix="pass trajectory_key=/time_key= naming the obs columns to use.",
            )
    X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    X = X.astype(np.float64, copy=False)
    t = pd.to_numeric(adata.obs[time_key], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(t).all():
        raise InputError(
            "time values are missing or non-numeric",
            field=f"obs[{time_key!r}]",
            fix="give every observation a numeric time.",
        )
    if not np.isfinite(X).all():
        raise InputError(
            "X holds NaN or inf; the trajectory format uses empty cells only as padding",
            field="adata.X",
            fix="impute or drop the missing values before writing.",
        )
    labels = adata.obs[trajectory_key].astype(str).to_numpy()
    order = pd.unique(labels)
    groups = [np.flatnonzero(labels == lab) for lab in order]
    width = max(len(g) for g in groups)
    width = max(width, 2)
    out = [",".join([str(X.shape[1]), str(len(order))] + [""] * (width - 2))]
    for g in groups:
        out.extend(_format_block(X[g].T, width))
        out.extend(_format_block(t[g][None, :], width))
    text = "\n".join(out) + "\n"

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
