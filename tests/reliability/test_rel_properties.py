"""Property-based: random shapes, dtypes, NaNs, names and DAGs fed to both APIs.

Every call either succeeds or raises a :mod:`biostruct.errors` exception; on failure nothing is
written into the caller's data. The examples are derandomized (the same 200 per API on every
run), so a failure here is reproducible and never flaky.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biostruct.errors import BiostructError

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DTYPES = ["float32", "float64", "int64", "bool", "object"]


#: Input classes that still end in a non-biostruct exception: name -> predicate on the case.
#: Each is a missing input check in the named module, to be added there. The test fails on a
#: non-biostruct exception for any case outside these classes, and warns about a class whose
#: cases no longer raise one (then delete the entry). Classes, not code locations, so that moving code
#: does not break the test.
KNOWN_GRN: dict = {}  # none left: no genes, no observations, text time are InputErrors now
KNOWN_DAGVAE: dict = {}  # none left: too few cells for the clusters, duplicated cell names


def _check_property(strategy, run, known: dict) -> None:
    """Run 200 derandomized examples; every non-biostruct exception must fall in a known class."""
    new: dict[str, str] = {}
    seen: set[str] = set()
    n_ok = n_refused = 0

    @SETTINGS
    @given(case=strategy)
    def examples(case):
        nonlocal n_ok, n_refused
        try:
            run(case)
            n_ok += 1
        except BiostructError:
            n_refused += 1
        except AssertionError:
            raise
        except Exception as exc:
            cls = next((name for name, match in known.items() if match(case)), None)
            if cls is None:
                new.setdefault(f"{type(exc).__name__}: {exc!s:.150}", f"{case!r:.300}")
            else:
                seen.add(cls)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        examples()
    assert not new, f"non-biostruct exceptions: {new}"
    fixed = sorted(set(known) - seen)
    if fixed:  # a warning, not a failure: the modules are being fixed while this test runs
        warnings.warn(f"refused properly now, delete from KNOWN: {fixed}", stacklevel=1)
    assert n_ok >= 10 and n_refused >= 50  # both paths are exercised


def _matrix(draw, n: int, m: int, counts: bool = False) -> np.ndarray:
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.poisson(2.0, size=(n, m)).astype(float) if counts else rng.uniform(0, 1, (n, m))
    if n and m:
        spoil = draw(st.sampled_from(["none"] * 6 + ["nan", "inf", "negative", "huge", "frac"]))
        i, j = rng.integers(n), rng.integers(m)
        x[i, j] = {
            "none": x[i, j],
            "nan": np.nan,
            "inf": np.inf,
            "negative": -3.0,
            "huge": 1e30,
            "frac": 0.37,
        }[spoil]
    dtype = draw(st.sampled_from(["float32"] * 4 + DTYPES))
    if dtype == "object":
        return x.astype(str).astype(object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return x.astype(dtype)


def _names(draw, n: int, prefix: str) -> list[str]:
    kind = draw(st.sampled_from(["unique"] * 6 + ["duplicated", "empty", "dotted"]))
    names = [f"{prefix}{i}" for i in range(n)]
    if n > 1 and kind == "duplicated":
        names[-1] = names[0]
    elif n and kind == "empty":
        names[0] = ""
    elif n and kind == "dotted":
        names[0] = f"{prefix}.a/b"
    return names


def _snapshot(a) -> dict[str, set]:
    return {
        attr: set(getattr(a, attr).keys())
        for attr in ("uns", "varp", "layers", "obsm", "obs")
        if hasattr(a, attr)
    }


@st.composite
def grn_case(draw):
    import anndata as ad

    n_obs = draw(st.sampled_from([12] * 5 + [0, 1, 2, 6, 9]))
    n_vars = draw(st.sampled_from([4] * 5 + [0, 1, 2]))
    x = _matrix(draw, n_obs, n_vars)
    obs = pd.DataFrame(index=_names(draw, n_obs, "c"))
    time = draw(st.sampled_from(["numeric"] * 6 + ["strings", "nan", "missing", "constant"]))
    t = np.tile([0.0, 1.0, 2.5], n_obs)[:n_obs]
    if time == "numeric":
        obs["time"] = t
    elif time == "strings":
        obs["time"] = [f"t{v}" for v in t]
    elif time == "nan":
        obs["time"] = np.where(np.arange(n_obs) == 0, np.nan, t)
    elif time == "constant":
        obs["time"] = 1.0
    traj = draw(st.sampled_from(["two"] * 5 + ["one", "missing", "numbers"]))
    if traj == "two":
        obs["trajectory"] = [str(i // 3) for i in range(n_obs)]
    elif traj == "one":
        obs["trajectory"] = "a"
    elif traj == "numbers":
        obs["trajectory"] = np.arange(n_obs) // 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ad.AnnData(x, obs=obs)
        a.var_names = _names(draw, n_vars, "g")
    kinds = ["varp"] * 6 + ["array"] * 2 + ["none", "wrong_shape", "nan", "zeros"]
    kind = draw(st.sampled_from([*kinds, "edges", "missing_key"]))
    prior = None
    if kind == "varp" and n_vars:
        p = np.zeros((n_vars, n_vars), dtype=np.float32)
        p[0, -1] = 1.0
        a.varp["prior"] = p
        prior = "prior"
    elif kind == "array":
        prior = np.eye(n_vars, k=1)
    elif kind == "wrong_shape":
        prior = np.ones((n_vars + 1, n_vars))
    elif kind == "nan":
        prior = np.full((n_vars, n_vars), np.nan)
    elif kind == "zeros":
        prior = np.zeros((n_vars, n_vars))
    elif kind == "edges":
        genes = [*[*map(str, a.var_names), "x", "y"][:2], "unknown_gene"]
        prior = pd.DataFrame({"source": genes[:2], "target": genes[-2:], "weight": [1.0, -1.0]})
    elif kind == "missing_key":
        prior = "priorr"
    method = draw(st.sampled_from(["dash", "imp", "phoenix", "dense", "l1", "pilot", "foo"]))
    if draw(st.integers(0, 2)):  # two thirds of the cases: default options
        return a, prior, method, {}
    options = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "lr": st.sampled_from([1e-3, -1.0, 0.0, float("nan")]),
                "batch_size": st.sampled_from([1, 0, 4]),
                "val_fraction": st.sampled_from([0.0, 0.5, 1.0, 2.0]),
                "init": st.sampled_from(["foo", "phoenix"]),
                "predict": st.booleans(),
                "key_added": st.sampled_from(["grn", "prior", ""]),
                "hidden": st.sampled_from([0, 2]),
            },
        )
    )
    return a, prior, method, options


def _run_grn(case) -> None:
    from biostruct.grn import infer_grn

    adata, prior, method, options = case
    options = {"hidden": 2, **options}
    before = _snapshot(adata)
    try:
        infer_grn(adata, prior, method=method, epochs=1, device="cpu", **options)
    except Exception:
        assert _snapshot(adata) == before, "a failed call wrote into adata"
        raise


def test_infer_grn_fails_only_with_biostruct_errors():
    _check_property(grn_case(), _run_grn, KNOWN_GRN)


@st.composite
def dagvae_case(draw):
    import anndata as ad

    n = draw(st.sampled_from([10] * 5 + [0, 1, 3]))
    names = draw(
        st.lists(
            st.sampled_from(["rna", "atac", "prot", "a.b", "", "RNA"]),
            min_size=1,
            max_size=2,
            unique=True,
        )
    )
    cells = _names(draw, n, "c")
    mods = {}
    for m in names:
        k = draw(st.sampled_from([5] * 5 + [0, 1]))
        x = _matrix(draw, n, k, counts=True)
        same = draw(st.integers(0, 5)) or not n
        obs_names = list(cells) if same else [*cells[:-1], "other"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = ad.AnnData(x, obs=pd.DataFrame(index=obs_names))
            a.var_names = [f"{m}_f{i}" for i in range(k)]
        mods[m] = a
    graph_kind = draw(
        st.sampled_from(
            ["default", "default", "list", "mapping", "cycle", "unknown_parent", "text"]
        )
    )
    graph = None
    if draw(st.integers(0, 1)):  # half of the cases: the usual pair
        names = ["atac", "rna"]
        mods = dict(zip(names, [mods[m] for m in list(mods) * 2][:2]))
    comps = [{"name": m, "modalities": [m]} for m in names]
    if graph_kind == "list":
        if len(comps) == 2:
            comps[1]["parents"] = [comps[0]["name"]]
        graph = {"components": comps}
    elif graph_kind == "mapping":
        graph = {"components": {c["name"]: {"modalities": c["modalities"]} for c in comps}}
    elif graph_kind == "cycle":
        if len(comps) == 2:
            comps[0]["parents"], comps[1]["parents"] = [comps[1]["name"]], [comps[0]["name"]]
        else:
            comps[0]["parents"] = [comps[0]["name"]]
        graph = {"components": comps}
    elif graph_kind == "unknown_parent":
        comps[0]["parents"] = ["nobody"]
        graph = {"components": comps}
    elif graph_kind == "text":
        graph = "components: [this is: not, {a: graph"
    if draw(st.integers(0, 2)):  # two thirds of the cases: default options
        return mods, graph, {}
    options = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "n_latent": st.sampled_from([0, 1, 2]),
                "batch_size": st.sampled_from([1, 2, 16]),
                "n_clusters": st.sampled_from([0, 1, 3]),
                "components": st.sampled_from([["rna"], [], ["nope"]]),
                "copy": st.booleans(),
                "validation_fraction": st.sampled_from([0.0, 0.5, 1.0]),
            },
        )
    )
    return mods, graph, options


def _run_dagvae(case) -> None:
    from biostruct.multiomics import dag_vae

    mods, graph, options = case
    options = {"n_latent": 2, **options}
    before = {m: _snapshot(a) for m, a in mods.items()}
    try:
        dag_vae(mods, graph, max_epochs=1, n_hidden=4, device="cpu", progress=False, **options)
    except Exception:
        assert {m: _snapshot(a) for m, a in mods.items()} == before, "a failed call wrote data"
        raise


def test_dag_vae_fails_only_with_biostruct_errors():
    _check_property(dagvae_case(), _run_dagvae, KNOWN_DAGVAE)


@pytest.mark.parametrize("bad", [float("nan"), -1.0])
def test_examples_reach_the_checks(bad, tiny_adata):
    # the strategies are only useful if bad values really get to the input checks
    from biostruct.grn import infer_grn

    x = np.array(tiny_adata.X)
    x[0, 0] = bad
    tiny_adata.X = x
    before = _snapshot(tiny_adata)
    with pytest.raises(BiostructError):
        infer_grn(tiny_adata, "prior", method="dash", epochs=1, hidden=2, device="cpu", lr=bad)
    assert _snapshot(tiny_adata) == before
