"""A checkpoint is only resumed by the run that wrote it; any other run is refused, loudly."""

from __future__ import annotations

import numpy as np
import pytest

from biostruct.errors import ConfigError
from biostruct.grn import GRNModel, infer_grn
from biostruct.serialization import FingerprintMismatchError

FAST = {"method": "dash", "epochs": 2, "hidden": 4, "batch_size": 8, "device": "cpu"}


def test_same_run_resumes_from_its_checkpoint(tiny_adata, tmp_path):
    ckpt = str(tmp_path / "run.pt")
    first = infer_grn(tiny_adata, "prior", checkpoint=ckpt, **FAST)
    again = infer_grn(tiny_adata.copy(), "prior", checkpoint=ckpt, **FAST)
    # the finished checkpoint is reused: same weights, no further epochs
    np.testing.assert_array_equal(again.effect_matrix(), first.effect_matrix())
    assert len(again.history) == len(first.history) == 2


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        ({"lr": 0.05}, "config"),
        ({"method": "imp"}, "pruning"),
        ({"seed": 3}, "seed"),
        ({"epochs": 3}, "config"),
    ],
)
def test_checkpoint_of_another_run_is_refused(tiny_adata, tmp_path, change, differs):
    ckpt = str(tmp_path / "run.pt")
    infer_grn(tiny_adata, "prior", checkpoint=ckpt, **FAST)
    other = tiny_adata.copy()
    del other.uns["grn"], other.varp["grn"]
    with pytest.raises(FingerprintMismatchError, match=differs) as exc:
        infer_grn(other, "prior", checkpoint=ckpt, **{**FAST, **change})
    assert isinstance(exc.value, ConfigError)
    assert "resume=False" in str(exc.value)
    assert "grn" not in other.uns and "grn" not in other.varp  # nothing written on failure


def test_checkpoint_with_other_data_or_prior_is_refused(tiny_adata, tmp_path):
    ckpt = str(tmp_path / "run.pt")
    infer_grn(tiny_adata, "prior", checkpoint=ckpt, **FAST)
    shifted = tiny_adata.copy()
    shifted.X = shifted.X * 0.9
    with pytest.raises(FingerprintMismatchError, match="data"):
        infer_grn(shifted, "prior", checkpoint=ckpt, **FAST)
    reprior = tiny_adata.copy()
    reprior.varp["prior"] = np.eye(reprior.n_vars, k=1, dtype=np.float32)
    with pytest.raises(FingerprintMismatchError, match="prior"):
        infer_grn(reprior, "prior", checkpoint=ckpt, **FAST)


def test_resume_false_starts_afresh_and_overwrites(tiny_adata, tmp_path):
    ckpt = tmp_path / "run.pt"
    infer_grn(tiny_adata, "prior", checkpoint=str(ckpt), **FAST)
    m = GRNModel(tiny_adata, "prior", hidden=4, device="cpu")
    m.train("dash", epochs=2, batch_size=8, lr=0.05, checkpoint=ckpt, resume=False)
    m2 = GRNModel(tiny_adata, "prior", hidden=4, device="cpu")
    m2.train("dash", epochs=2, batch_size=8, lr=0.05, checkpoint=ckpt)  # now resumes the new run
    np.testing.assert_array_equal(m2.effect_matrix(), m.effect_matrix())
