"""Crafted pickles as checkpoints and model files never run; damaged or foreign files are refused.

Each malicious file is tried for real: its payload runs ``touch <marker>`` when unpickled
without ``weights_only`` (checked first, so the tests would see an unsafe load), and each test
then asserts that the marker was not created and that a biostruct error was raised whose
message does not suggest ``weights_only=False``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from biostruct.errors import BiostructError, ChecksumError, DataFormatError, InputError
from biostruct.serialization import (
    MAGIC,
    FingerprintMismatchError,
    _header_digest,
    load_torch,
    save_torch,
)

FAST = {"method": "dash", "epochs": 2, "hidden": 4, "batch_size": 8}


def _refused(exc: pytest.ExceptionInfo, marker: Path) -> None:
    assert isinstance(exc.value, BiostructError)
    assert not marker.exists(), "the pickle ran"
    text = str(exc.value)
    assert "weights_only" not in text and "Fix:" in text
    # torch's own error (with its weights_only=False hint) is not chained into the traceback
    assert exc.value.__cause__ is None
    assert exc.value.__context__ is None or exc.value.__suppress_context__


def _wrap_in_valid_header(path: Path, raw: bytes, kind: str, fingerprint: dict) -> None:
    """A biostruct container (correct sha256) around ``raw``: only weights_only can stop it."""
    header = {
        "kind": kind,
        "format_version": 1,
        "fingerprint": fingerprint,
        "payload_bytes": len(raw),
    }
    header["sha256"] = _header_digest(header, raw)
    path.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + raw)


def test_payload_is_live(tmp_path, write_malicious):
    marker = tmp_path / "pwned"
    path = write_malicious(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)  # what the old load_checkpoint did
    assert marker.exists()


def _trainer(adata, **kw):
    from biostruct.grn import GRNModel
    from biostruct.grn.field import PhoenixField
    from biostruct.grn.methods import build_configs
    from biostruct.grn.train import Trainer

    m = GRNModel(adata, "prior", hidden=4, device="cpu")
    cfg, pruning = build_configs("dash", 2, batch_size=8, **kw)
    return Trainer(
        PhoenixField(adata.n_vars, 4, seed=0),
        m._train_tr,
        m._val_tr,
        cfg,
        prior=m.prior,
        pruning=pruning,
    )


def test_malicious_checkpoint_via_trainer(tiny_adata, tmp_path, write_malicious):
    marker = tmp_path / "pwned"
    ckpt = write_malicious(tmp_path / "run.pt", marker)
    with pytest.raises(DataFormatError) as exc:
        _trainer(tiny_adata).load_checkpoint(ckpt)
    _refused(exc, marker)


def test_malicious_checkpoint_via_infer_grn_resume(tiny_adata, tmp_path, write_malicious):
    from biostruct.grn import infer_grn

    marker = tmp_path / "pwned"
    ckpt = write_malicious(tmp_path / "run.pt", marker)
    with pytest.raises(DataFormatError) as exc:
        infer_grn(tiny_adata, "prior", checkpoint=str(ckpt), device="cpu", **FAST)
    _refused(exc, marker)
    assert "grn" not in tiny_adata.varp and "grn" not in tiny_adata.uns


def test_malicious_pickle_inside_a_valid_container(tiny_adata, tmp_path, write_malicious):
    marker = tmp_path / "pwned"
    raw = write_malicious(tmp_path / "raw.pt", marker).read_bytes()
    trainer = _trainer(tiny_adata)
    ckpt = tmp_path / "run.pt"
    _wrap_in_valid_header(ckpt, raw, "grn-checkpoint", trainer._run_fingerprint())
    with pytest.raises(DataFormatError) as exc:
        trainer.load_checkpoint(ckpt)
    _refused(exc, marker)
    assert "refuses to unpickle" in str(exc.value)


@pytest.fixture()
def saved_grn(tiny_adata, tmp_path):
    from biostruct.grn import GRNModel

    model = GRNModel(tiny_adata, "prior", hidden=4, device="cpu").train(
        "dash", epochs=2, batch_size=8
    )
    return model, model.save(tmp_path / "grn_model")


def test_malicious_grn_model_file(saved_grn, tmp_path, write_malicious):
    from biostruct.grn import GRNModel

    _, path = saved_grn
    marker = tmp_path / "pwned"
    write_malicious(path / "model.pt", marker)
    with pytest.raises(DataFormatError) as exc:
        GRNModel.load(path)
    _refused(exc, marker)
    # the same pickle inside a container that claims to match meta.json
    from biostruct.serialization import sha256_bytes

    raw = (path / "model.pt").read_bytes()
    fp = {"meta_sha256": sha256_bytes((path / "meta.json").read_bytes())}
    _wrap_in_valid_header(path / "model.pt", raw, "grn-model", fp)
    with pytest.raises(DataFormatError) as exc:
        GRNModel.load(path)
    _refused(exc, marker)


def test_malicious_dagvae_model_file(tmp_path, write_malicious):
    from biostruct.multiomics.model import _FORMAT_VERSION, DAGVAE

    path = tmp_path / "dagvae"
    path.mkdir()
    # the current version, so that the refusal comes from reading model.pt
    (path / "model.json").write_text(json.dumps({"format_version": _FORMAT_VERSION}))
    marker = tmp_path / "pwned"
    write_malicious(path / "model.pt", marker)
    with pytest.raises(DataFormatError) as exc:
        DAGVAE.load(path)
    _refused(exc, marker)


def test_grn_model_round_trip_and_damage(saved_grn, tiny_adata):
    from biostruct.grn import GRNModel

    model, path = saved_grn
    back = GRNModel.load(path, tiny_adata, device="cpu")
    np.testing.assert_array_equal(back.effect_matrix(), model.effect_matrix())
    good = (path / "model.pt").read_bytes()

    # one flipped byte in the weights
    bad = bytearray(good)
    bad[-20] ^= 0x01
    (path / "model.pt").write_bytes(bytes(bad))
    with pytest.raises(ChecksumError, match="sha256"):
        GRNModel.load(path)

    # truncated
    (path / "model.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataFormatError, match="truncated"):
        GRNModel.load(path)

    # old layout: a plain torch state dict
    torch.save({k: v for k, v in model.module.state_dict().items()}, path / "model.pt")
    with pytest.raises(DataFormatError, match="not a biostruct grn model file"):
        GRNModel.load(path)
    (path / "model.pt").write_bytes(good)

    # meta.json edited after saving (another gene list, say) no longer matches the weights
    meta = json.loads((path / "meta.json").read_text())
    meta["var_names"] = meta["var_names"][::-1]
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(FingerprintMismatchError, match="meta_sha256"):
        GRNModel.load(path)

    meta["var_names"] = meta["var_names"][::-1]
    meta["format_version"] = 99
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataFormatError, match="format_version 99"):
        GRNModel.load(path)
    (path / "meta.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="damaged"):
        GRNModel.load(path)


def test_grn_load_with_other_genes_is_refused(saved_grn, tiny_adata):
    from biostruct.grn import GRNModel

    _, path = saved_grn
    other = tiny_adata.copy()
    other.var_names = [f"x{k}" for k in range(other.n_vars)]
    with pytest.raises(InputError, match="genes of adata differ") as exc:
        GRNModel.load(path, other)
    assert exc.value.field == "adata.var_names"
    shuffled = tiny_adata[:, list(tiny_adata.var_names[::-1])].copy()
    with pytest.raises(InputError, match="another order"):
        GRNModel.load(path, shuffled)


def test_container_checks(tmp_path):
    path = save_torch(tmp_path / "f.pt", {"w": torch.ones(3)}, kind="grn-model", fingerprint={})
    assert torch.equal(load_torch(path, kind="grn-model")["w"], torch.ones(3))
    with pytest.raises(DataFormatError, match="holds a 'grn-model', not a 'dagvae-model'"):
        load_torch(path, kind="dagvae-model")
    # a header claiming format_version 99 (with a matching sha256) is refused
    raw = path.read_bytes()
    head, payload = raw[len(MAGIC) :].split(b"\n", 1)
    header = json.loads(head)
    header["format_version"] = 99
    header["sha256"] = _header_digest(header, payload)
    path.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + payload)
    with pytest.raises(DataFormatError, match="format_version 99"):
        load_torch(path, kind="grn-model")
    # a flipped byte in the header's fingerprint is caught by the sha256
    path2 = save_torch(tmp_path / "g.pt", [1, 2], kind="grn-model", fingerprint={"a": "x"})
    raw = path2.read_bytes().replace(b'"a": "x"', b'"a": "y"')
    path2.write_bytes(raw)
    with pytest.raises(ChecksumError):
        load_torch(path2, kind="grn-model")
    with pytest.raises(InputError, match="does not exist"):
        load_torch(tmp_path / "missing.pt", kind="grn-model")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(DataFormatError, match="not a biostruct"):
        load_torch(tmp_path / "text.pt", kind="grn-model")
    assert not list(tmp_path.glob("*.tmp"))


def test_numpy_in_a_checkpoint_state_is_stored_as_plain_values(tmp_path):
    from biostruct.serialization import plain

    state = {"loss": np.float64(0.5), "arr": np.arange(3), "t": (np.int64(2), "a")}
    path = save_torch(tmp_path / "s.pt", plain(state), kind="grn-checkpoint")
    back = load_torch(path, kind="grn-checkpoint")
    assert back["loss"] == 0.5 and isinstance(back["loss"], float)
    assert torch.equal(back["arr"], torch.arange(3))
    assert back["t"] == (2, "a")
    with pytest.raises(DataFormatError):  # numpy scalars are refused by weights_only
        buf = io.BytesIO()
        torch.save(state, buf)
        _wrap_in_valid_header(tmp_path / "n.pt", buf.getvalue(), "grn-checkpoint", {})
        load_torch(tmp_path / "n.pt", kind="grn-checkpoint")


@pytest.fixture()
def saved_dagvae(tmp_path):
    import anndata as ad
    import pandas as pd

    from biostruct.multiomics import dag_vae

    rng = np.random.default_rng(0)
    obs = pd.DataFrame(index=[f"c{i}" for i in range(40)])
    rna = ad.AnnData(rng.poisson(2.0, size=(40, 12)).astype(np.float32), obs=obs.copy())
    peaks = rng.random((40, 10)) < 0.3
    peaks[:, 0] = True  # every cell has counts in both modalities
    atac = ad.AnnData(peaks.astype(np.float32), obs=obs.copy())
    rna.var_names = [f"g{i}" for i in range(12)]
    atac.var_names = [f"p{i}" for i in range(10)]
    mods = {"rna": rna, "atac": atac}
    model = dag_vae(mods, max_epochs=1, n_latent=2, n_hidden=4, device="cpu", progress=False)
    return model, model.save(tmp_path / "dagvae"), mods


def test_dagvae_round_trip_and_damage(saved_dagvae):
    from biostruct.multiomics.model import _FORMAT_VERSION, DAGVAE

    model, path, mods = saved_dagvae
    back = DAGVAE.load(path, mods, device="cpu")
    np.testing.assert_array_equal(
        back.get_latent_representation("rna"), model.get_latent_representation("rna")
    )
    good = (path / "model.pt").read_bytes()
    bad = bytearray(good)
    bad[-20] ^= 0x01
    (path / "model.pt").write_bytes(bytes(bad))
    with pytest.raises(ChecksumError, match="sha256"):
        DAGVAE.load(path)
    (path / "model.pt").write_bytes(good[:-100])
    with pytest.raises(DataFormatError, match="truncated"):
        DAGVAE.load(path)
    (path / "model.pt").write_bytes(good)
    meta = json.loads((path / "model.json").read_text())
    meta["format_version"] = 99
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(DataFormatError, match="format_version 99"):
        DAGVAE.load(path)
    del meta["format_version"]  # an old layout
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(DataFormatError, match="format_version None"):
        DAGVAE.load(path)
    meta["format_version"] = _FORMAT_VERSION
    meta["n_features"]["rna"] = 99  # edited after saving
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(FingerprintMismatchError, match="meta_sha256"):
        DAGVAE.load(path)


@pytest.mark.parametrize("method", ["velocity", "posterior"])
def test_velocity_models_round_trip(tiny_adata, tmp_path, method):
    from biostruct.grn import GRNModel

    opts = {"velocity": {"members": 2, "max_steps": 30, "hidden": 6}}
    model = GRNModel(tiny_adata, "prior", hidden=4, device="cpu")
    if method == "posterior":  # DASH first, then the ensemble
        model.train(method, epochs=2, batch_size=8, **opts)
    else:
        model.train(method, **opts)
    back = GRNModel.load(model.save(tmp_path / "m"), tiny_adata, device="cpu")
    assert back.method == method
    np.testing.assert_array_equal(back.edge_scores(), model.edge_scores())
    np.testing.assert_array_equal(back.effect_matrix(), model.effect_matrix())
    if model.velocity is not None:
        np.testing.assert_array_equal(back.velocity.stability, model.velocity.stability)
    assert back.warnings == model.warnings
