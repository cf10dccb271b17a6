"""Prior readers: dense CSV, edge lists, decoupler DataFrames, labelled matrices, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import biostruct as bs
from biostruct.errors import PriorError

GENES = ["A", "B", "C", "D"]


def test_dense_shared_priors_match_csv(grn_dir):
    names = bs.datasets.read_gene_names(grn_dir / "sim690" / "gene_names.csv")
    p = bs.datasets.read_prior(grn_dir / "sim690" / "prior_noise_0.0.csv", names)
    ref = np.loadtxt(grn_dir / "sim690" / "prior_noise_0.0.csv", delimiter=",")
    np.testing.assert_array_equal(p, ref)
    assert p.dtype == np.float64
    assert (p != 0).sum() == 1082 and (p > 0).sum() == 860


def test_edge_properties_equal_dense_ground_truth(grn_dir):
    # edge_properties.csv (from,to,weight,activation) is the same network as prior_noise_0.0;
    # it names input genes without their "_input" suffix
    names = bs.datasets.read_gene_names(grn_dir / "sim690" / "gene_names.csv")
    with pytest.raises(PriorError, match="97 gene"):
        bs.datasets.read_prior(grn_dir / "sim690" / "edge_properties.csv", names)
    plain = [n.removesuffix("_input") for n in names]
    dense = bs.datasets.read_prior(grn_dir / "sim690" / "prior_noise_0.0.csv", plain)
    edges = bs.datasets.read_prior(grn_dir / "sim690" / "edge_properties.csv", plain)
    np.testing.assert_array_equal(edges, dense)


def test_edge_list_csv_with_sign(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text("from,to,sign\nA,B,1\nB,C,-1\nD,A,0.5\n")
    p = bs.datasets.read_prior(f, GENES)
    expected = np.zeros((4, 4))
    expected[0, 1], expected[1, 2], expected[3, 0] = 1, -1, 0.5
    np.testing.assert_array_equal(p, expected)


def test_edge_list_without_weight_is_binary(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text('"from","to"\n"A","D"\n"C","B"\n')
    p = bs.datasets.read_prior(f, GENES)
    assert p[0, 3] == 1 and p[2, 1] == 1 and p.sum() == 2


def test_decoupler_dataframe_and_round_trip():
    df = pd.DataFrame(
        {"source": ["A", "A", "C"], "target": ["B", "C", "D"], "weight": [1.0, -2.0, 0.3]}
    )
    p = bs.datasets.read_prior(df, GENES)
    back = bs.datasets.matrix_to_edges(p, GENES)
    pd.testing.assert_frame_equal(back, df)


def test_var_names_order_is_respected():
    df = pd.DataFrame({"source": ["A"], "target": ["B"], "weight": [2.0]})
    p = bs.datasets.read_prior(df, ["B", "A"])
    np.testing.assert_array_equal(p, [[0, 0], [2, 0]])


def test_labelled_dense_csv_aligned_by_name(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text(",C,A\nA,0,1\nC,-1,0\n")
    p = bs.datasets.read_prior(f, GENES)
    expected = np.zeros((4, 4))
    expected[0, 0] = 1  # A -> A
    expected[2, 2] = -1  # C -> C
    np.testing.assert_array_equal(p, expected)


def test_numpy_array_and_shape_error():
    m = np.eye(4)
    np.testing.assert_array_equal(bs.datasets.read_prior(m, GENES), m)
    with pytest.raises(PriorError, match=r"shape \(3, 3\)"):
        bs.datasets.read_prior(np.eye(3), GENES)
    bad = np.eye(4)
    bad[1, 2] = np.nan
    with pytest.raises(PriorError, match="row 2, column 3"):
        bs.datasets.read_prior(bad, GENES)


def test_unknown_genes_raise_with_names_count_and_fix():
    df = pd.DataFrame(
        {
            "source": ["A", "X1", "X2", "X3", "X4", "X5", "X6"],
            "target": ["B", "A", "A", "A", "A", "A", "Y"],
        }
    )
    with pytest.raises(PriorError) as err:
        bs.datasets.read_prior(df, GENES)
    msg = str(err.value)
    assert "7 gene(s)" in msg
    assert "'X1'" in msg and "(and 2 more)" in msg
    assert "6 of 7 edges" in msg
    assert "missing='drop'" in msg
    p = bs.datasets.read_prior(df, GENES, missing="drop")
    assert p.sum() == 1 and p[0, 1] == 1


def test_drop_everything_is_an_error():
    df = pd.DataFrame({"source": ["X"], "target": ["Y"]})
    with pytest.raises(PriorError, match="no prior entry is left"):
        bs.datasets.read_prior(df, GENES, missing="drop")


def test_conflicting_duplicates_and_bad_weights():
    df = pd.DataFrame({"source": ["A", "A"], "target": ["B", "B"], "weight": [1.0, -1.0]})
    with pytest.raises(PriorError, match="more than once"):
        bs.datasets.read_prior(df, GENES)
    same = pd.DataFrame({"source": ["A", "A"], "target": ["B", "B"], "weight": [1.0, 1.0]})
    assert bs.datasets.read_prior(same, GENES)[0, 1] == 1
    bad = pd.DataFrame({"source": ["A"], "target": ["B"], "weight": ["strong"]})
    with pytest.raises(PriorError, match="'strong'"):
        bs.datasets.read_prior(bad, GENES)
    with pytest.raises(PriorError, match="missing="):
        bs.datasets.read_prior(same, GENES, missing="ignore")
