"""Embedded defaults: reproducible build, size, and agreement with the full data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import biostruct as bs
from biostruct.datasets import build_embedded


def test_rebuild_reproduces_shipped_bytes(data_dir, tmp_path):
    written = build_embedded.build_all(data_dir, tmp_path)
    shipped = sorted(p.name for p in build_embedded.EMBEDDED_DIR.iterdir() if p.is_file())
    assert sorted(p.name for p in written) == shipped
    for p in written:
        assert p.read_bytes() == (build_embedded.EMBEDDED_DIR / p.name).read_bytes(), p.name


def test_embedded_is_small():
    total = sum(p.stat().st_size for p in build_embedded.EMBEDDED_DIR.iterdir())
    assert total < 3_000_000


def test_embedded_listed():
    assert set(bs.datasets.list(embedded=True)) == {"snareseq_demo", "sim690_demo"}
    cat = bs.datasets.catalog()
    assert cat.loc["snareseq_demo", "embedded"] and not cat.loc["snareseq", "embedded"]
    assert "MIT" in cat.loc["snareseq_demo", "license"]


@pytest.fixture(scope="module")
def demo():
    return bs.datasets.load("snareseq_demo")


@pytest.fixture(scope="module")
def full(data_dir):
    return bs.datasets.load("snareseq", data_dir=data_dir, download=False)


def test_snareseq_demo_is_a_faithful_subsample(demo, full):
    assert demo.n_obs == build_embedded.N_CELLS
    rna, atac = demo["rna"], demo["atac"]
    assert rna.n_vars == 1677 and atac.n_vars == build_embedded.N_PEAKS
    assert sp.issparse(rna.X) and sp.issparse(atac.X)
    assert set(demo.obs_names) <= set(full.obs_names)
    cells = full.obs_names.get_indexer(demo.obs_names)
    assert (np.diff(cells) > 0).all()
    # same counts as the full data for those cells and features
    assert (full["rna"].X[cells] != rna.X).nnz == 0
    peaks = full["atac"].var_names.get_indexer(atac.var_names)
    assert (np.diff(peaks) > 0).all()
    assert (full["atac"].X[cells][:, peaks] != atac.X).nnz == 0
    for col in ("batch", "label", "label_fine"):
        assert list(demo.obs[col]) == list(full.obs[col].iloc[cells])
    # the chosen peaks are the most frequently accessible ones
    freq = np.asarray((full["atac"].X > 0).sum(axis=0)).ravel()
    assert freq[peaks].min() >= np.delete(freq, peaks).max()


def test_snareseq_demo_is_stratified(demo, full):
    all_labels = full.obs["label"].value_counts()
    got = demo.obs["label"].value_counts()
    assert set(got.index) == set(all_labels.index)
    for label, n_all in all_labels.items():
        expected = build_embedded.N_CELLS * n_all / len(full.obs)
        assert got[label] >= min(n_all, build_embedded.MIN_PER_LABEL)
        if expected > 3 * build_embedded.MIN_PER_LABEL:
            assert abs(got[label] - expected) / expected < 0.1, label


def test_sim690_demo():
    a = bs.datasets.load("sim690_demo")
    assert a.shape == (100, 690)
    assert a.uns["dataset"]["embedded"]
    assert (a.varp["true_network"] != 0).sum() == 1082
