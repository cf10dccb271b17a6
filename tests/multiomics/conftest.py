"""Fixtures of the multi-omics tests: the embedded SNARE-seq demo subsample."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def snare_demo():
    """2,000 SNARE-seq cells (label-stratified), 1,677 genes, 4,000 peaks; empty genes dropped."""
    import torch

    import biostruct as bs
    from biostruct.multiomics import filter_empty

    torch.set_num_threads(1)
    md = bs.datasets.load("snareseq_demo")
    return filter_empty(md)
