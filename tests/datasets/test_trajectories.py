"""Trajectory CSV reader/writer: round trips on every shared file and format errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import biostruct as bs
from biostruct.errors import DataFormatError, InputError

# (trajectory file, gene-names file), relative to the grn/ folder of the shared data
TRAJECTORY_FILES = [
    ("sim690/test_10traj.csv", "sim690/gene_names.csv"),
    ("sim350/test_10traj.csv", "sim350/gene_names.csv"),
    ("hema/hema_B_529genes_2samples.csv", "hema/hema_gene_names_529.csv"),
    ("hema/hema_B_529genes_3testsamples.csv", "hema/hema_gene_names_529.csv"),
    ("hema/hema_mono_529genes_2samples.csv", "hema/hema_gene_names_529.csv"),
    ("breast500/desmedt_500genes_1sample_186T.csv", "breast500/desmedt_gene_names_500.csv"),
    ("breast500/desmedt_500genes_1sample_178T.csv", "breast500/desmedt_gene_names_500.csv"),
    (
        "breast500/desmedt_500genes_1TESTsample_8middleT.csv",
        "breast500/desmedt_gene_names_500.csv",
    ),
]


def _raw_grid(path: Path) -> tuple[int, int, np.ndarray]:
    """Independent reference parse: the cells as strings (no float conversion)."""
    with path.open() as fh:
        head = fh.readline().split(",")
    width = len(head)
    cells = pd.read_csv(
        path, header=None, skiprows=1, dtype=str, keep_default_na=False, names=range(width)
    ).to_numpy()
    return int(head[0]), int(head[1]), cells


@pytest.mark.parametrize(("traj", "genes"), TRAJECTORY_FILES, ids=[t for t, _ in TRAJECTORY_FILES])
def test_read_matches_reference_and_round_trips(grn_dir, tmp_path, traj, genes):
    path = grn_dir / traj
    adata = bs.datasets.read_trajectories(path, gene_names=grn_dir / genes)
    n_genes, n_traj, rows = _raw_grid(path)

    assert adata.n_vars == n_genes
    assert adata.X.dtype == np.float64
    assert list(adata.obs["trajectory"].cat.categories) == [str(k) for k in range(n_traj)]
    assert not np.isnan(adata.X).any()
    names = pd.read_csv(grn_dir / genes).iloc[:, 0].str.strip().tolist()
    assert list(adata.var_names) == names

    # every non-empty cell of the file is in the AnnData at the right place, every empty one is
    # padding (dropped)
    for k in range(n_traj):
        block = rows[k * (n_genes + 1) : (k + 1) * (n_genes + 1)]
        times = [float(c) for c in block[-1] if c != ""]
        sub = adata[adata.obs["trajectory"] == str(k)]
        np.testing.assert_array_equal(sub.obs["time"].to_numpy(), times)
        for g in (0, n_genes // 2, n_genes - 1):
            vals = [float(c) for c in block[g] if c != ""]
            np.testing.assert_array_equal(sub.X[:, g], vals)

    out = tmp_path / "out.csv"
    bs.datasets.write_trajectories(adata, out)
    again = bs.datasets.read_trajectories(out, gene_names=list(adata.var_names))
    np.testing.assert_array_equal(again.X, adata.X)
    np.testing.assert_array_equal(again.obs["time"].to_numpy(), adata.obs["time"].to_numpy())
    assert list(again.obs["trajectory"]) == list(adata.obs["trajectory"])
    # the rewritten file has the same grid shape, with the same padding cells empty
    n2, t2, rows2 = _raw_grid(out)
    assert (n2, t2) == (n_genes, n_traj)
    assert rows2.shape == rows.shape
    np.testing.assert_array_equal(rows == "", rows2 == "")


def test_unpadded_header_and_single_time_point(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("2,1\n1,2,3\n4,5,6\n0,1,2\n")
    assert bs.datasets.read_trajectories(path).shape == (3, 2)
    path.write_text("1,2\n7\n0\n8\n5\n")
    a = bs.datasets.read_trajectories(path)
    np.testing.assert_array_equal(a.X[:, 0], [7, 8])
    np.testing.assert_array_equal(a.obs["time"], [0, 5])
    bs.datasets.write_trajectories(a, tmp_path / "o.csv")
    b = bs.datasets.read_trajectories(tmp_path / "o.csv")
    np.testing.assert_array_equal(b.X, a.X)


def test_gene_names_default_and_sequence(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("2,1,\n1,2,3\n4,5,6\n0,1,2\n")
    a = bs.datasets.read_trajectories(path)
    assert list(a.var_names) == ["gene_0", "gene_1"]
    np.testing.assert_array_equal(a.X, [[1, 4], [2, 5], [3, 6]])
    b = bs.datasets.read_trajectories(path, gene_names=("A", "B"))
    assert list(b.var_names) == ["A", "B"]


def test_write_pads_shorter_trajectories_and_reorders_by_first_appearance(tmp_path):
    import anndata as ad

    obs = pd.DataFrame(
        {"lineage": ["b", "b", "a", "b"], "pt": [0.0, 0.5, 0.1, 1.0]},
        index=[f"c{i}" for i in range(4)],
    )
    X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    path = tmp_path / "o.csv"
    bs.datasets.write_trajectories(
        ad.AnnData(X=X, obs=obs), path, trajectory_key="lineage", time_key="pt"
    )
    lines = path.read_text().splitlines()
    assert lines[0] == "2,2,"
    assert lines[1:4] == ["1.0,3.0,7.0", "2.0,4.0,8.0", "0.0,0.5,1.0"]
    assert lines[4:7] == ["5.0,,", "6.0,,", "0.1,,"]
    back = bs.datasets.read_trajectories(path)
    np.testing.assert_array_equal(back.X, X[[0, 1, 3, 2]])


def test_write_rejects_missing_key_and_nan(tmp_path):
    import anndata as ad

    a = ad.AnnData(X=np.ones((2, 2)), obs=pd.DataFrame({"time": [0.0, 1.0]}, index=["a", "b"]))
    with pytest.raises(InputError, match="trajectory"):
        bs.datasets.write_trajectories(a, tmp_path / "x.csv")
    a.obs["trajectory"] = "0"
    a.X[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        bs.datasets.write_trajectories(a, tmp_path / "x.csv")
    assert not list(tmp_path.iterdir())


# --- format errors: each names the file, the 1-based line and a fix --------------------------


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("2,1,\n1,2,3\n4,5\n0,1,2\n", 3, "ragged"),
        ("2,1,,,\n1,2,3\n4,5,6\n0,1,2\n", 1, "ragged"),
        ("2,1,\n1,2,3\n4,5,6,7\n0,1,2\n", 3, "ragged"),
        ("2,1,\n1,2,3\n4,x,6\n0,1,2\n", 3, "non-numeric"),
        ("2,1,\n1,2,3\n4,5,6\n0,inf,2\n", 4, "infinite"),
        ("2,1,\n1,2,3\n4,,6\n0,1,2\n", 3, "missing value inside"),
        ("2,2,\n1,2,3\n4,5,6\n0,1,2\n1,2,\n4,5,\n0,,\n", 5, "has 1 time points"),
        ("2,1,\n1,2,3\n4,5,6\n0,,2\n", 4, "time row"),
        ("3,1,\n1,2,3\n4,5,6\n0,1,2\n", 1, "1 + N*(G+1)"),
        ("2,2,\n1,2,3\n4,5,6\n0,1,2\n", 1, "1 + N*(G+1)"),
        ("a,b,\n1,2,3\n4,5,6\n0,1,2\n", 1, "G,N"),
        ("2,1,\n1,2,3\n4,5,6\n,,\n", 4, "no time points"),
    ],
)
def test_format_errors(tmp_path, text, line, needle):
    path = _write(tmp_path, text)
    with pytest.raises(DataFormatError) as err:
        bs.datasets.read_trajectories(path)
    msg = str(err.value)
    assert needle in msg
    assert f"{path}, line {line}" in msg
    assert "Fix:" in msg


def test_gene_name_count_mismatch(tmp_path):
    path = _write(tmp_path, "2,1,\n1,2,3\n4,5,6\n0,1,2\n")
    names = tmp_path / "genes.csv"
    names.write_text('"x"\n"A"\n"B"\n"C"\n')
    with pytest.raises(DataFormatError, match=r"3 gene names .* G=2") as err:
        bs.datasets.read_trajectories(path, gene_names=names)
    assert f"{path}, line 1" in str(err.value) and "Fix:" in str(err.value)
    with pytest.raises(DataFormatError, match="duplicated"):
        bs.datasets.read_trajectories(path, gene_names=["A", "A"])
