"""SIM690/SIM350 simulator: reproduction of the published test set, parser safety, noise,
initial conditions and prior corruption."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import biostruct as bs
from biostruct.datasets.equations import compile_system, hill_activation, parse_expression
from biostruct.errors import InputError


@pytest.fixture(scope="module")
def sim690_test(grn_dir):
    return bs.datasets.read_trajectories(
        grn_dir / "sim690" / "test_10traj.csv", gene_names=grn_dir / "sim690" / "gene_names.csv"
    )


def test_reproduces_published_test_trajectories(sim690_test):
    ref = sim690_test
    x0 = ref.X[ref.obs["time"].to_numpy() == 0]
    sim = bs.datasets.simulate_sim690(10, initial_states=x0)
    assert list(sim.var_names) == list(ref.var_names)
    np.testing.assert_array_equal(sim.obs["time"], ref.obs["time"])
    assert list(sim.obs["trajectory"]) == list(ref.obs["trajectory"])
    err = np.abs(sim.X - ref.X).max()
    assert err <= 1e-5, err
    np.testing.assert_array_equal(sim.X, sim.layers["clean"])


def test_embedded_system_matches_shared_files(grn_dir):
    system = bs.datasets.sim690_system()
    names = bs.datasets.read_gene_names(grn_dir / "sim690" / "gene_names.csv")
    assert system.gene_names == names
    shared = pd.read_csv(grn_dir / "sim690" / "ode_system_functions.csv", dtype=str)
    pd.testing.assert_frame_equal(system.equations, shared)
    for noise in ("0.0", "0.025", "0.05", "0.1"):
        ref = bs.datasets.read_prior(grn_dir / "sim690" / f"prior_noise_{noise}.csv", names)
        np.testing.assert_array_equal(system.priors[f"prior_noise_{noise}"], ref)
    np.testing.assert_array_equal(system.true_network, system.priors["prior_noise_0.0"])


def test_simulated_object_contract():
    a = bs.datasets.simulate_sim690(4, times=(0, 1, 5), noise_sd=0.05, seed=3)
    assert a.shape == (12, 690)
    assert a.var["is_input"].sum() == 97
    # the regulators appearing in the equations are exactly the true edges
    np.testing.assert_array_equal(a.varp["equation_edges"], a.varp["true_network"] != 0)
    for key in ("prior_noise_0.0", "prior_noise_0.025", "prior_noise_0.05", "prior_noise_0.1"):
        assert a.varp[key].shape == (690, 690)
    clean = a.layers["clean"]
    assert clean.min() >= 0 and clean.max() <= 1
    resid = a.X - clean
    assert abs(resid.std() - 0.05) < 0.002 and abs(resid.mean()) < 0.002
    # input genes are constant over time in the clean values
    inputs = a.var["is_input"].to_numpy()
    for k in range(4):
        block = clean[a.obs["trajectory"].to_numpy() == str(k)][:, inputs]
        assert np.all(block == block[0])
    again = bs.datasets.simulate_sim690(4, times=(0, 1, 5), noise_sd=0.05, seed=3)
    np.testing.assert_array_equal(a.X, again.X)
    other = bs.datasets.simulate_sim690(4, times=(0, 1, 5), noise_sd=0.05, seed=4)
    assert not np.array_equal(a.X, other.X)


def test_random_initial_states_follow_the_dash_recipe():
    rng = np.random.default_rng(0)
    is_input = np.zeros(400, dtype=bool)
    is_input[:200] = True
    x = bs.datasets.random_initial_states(500, is_input, rng)
    assert x.min() >= 0 and x.max() <= 1
    # input genes: per-gene means ~ Beta(10, 10) (sd 0.109); small within-gene spread
    means = x[:, :200].mean(axis=0)
    assert abs(means.mean() - 0.5) < 0.03 and 0.08 < means.std() < 0.14
    assert np.median(x[:, :200].std(axis=0)) < 0.08
    # output genes: Beta(2, 2) + shift, clipped: wide spread within each gene
    assert np.median(x[:, 200:].std(axis=0)) > 0.15


def test_sim350_variant():
    system = bs.datasets.sim350_system()
    assert "edge_removed_variant" in system.name
    assert (system.priors["prior_noise_0.0"] != 0).sum() == 550
    assert (system.true_network != 0).sum() == 547
    a = bs.datasets.simulate_sim350(3, seed=1)
    assert a.shape == (15, 350)
    assert a.var["is_input"].sum() == 74  # SIN3 lost its only regulator
    np.testing.assert_array_equal(a.varp["equation_edges"], a.varp["true_network"] != 0)


def test_sim350_variant_is_close_to_but_not_the_published_generator(grn_dir):
    ref = bs.datasets.read_trajectories(
        grn_dir / "sim350" / "test_10traj.csv", gene_names=grn_dir / "sim350" / "gene_names.csv"
    )
    sim = bs.datasets.simulate_sim350(10, initial_states=ref.X[ref.obs["time"].to_numpy() == 0])
    err = np.abs(sim.X - ref.X)
    assert np.median(err) < 0.01
    assert err.max() > 0.1  # the 3 missing edges matter
    assert ref.var_names[err.max(axis=0).argmax()] == "SIN3"


def test_simulate_ode_system_generic():
    eq = pd.DataFrame({"node": ["u", "x"], "eqn": ["input gene", "u - x"]})
    a = bs.datasets.simulate_ode_system(
        eq, 2, times=(0.0, 1.0, 4.0), initial_states=np.array([[0.5, 0.0], [1.0, 2.0]])
    )
    t = np.array([0.0, 1.0, 4.0])
    # x(t) = u + (x0 - u) exp(-t)
    np.testing.assert_allclose(a.X[:3, 1], 0.5 - 0.5 * np.exp(-t), atol=1e-8)
    np.testing.assert_allclose(a.X[3:, 1], 1.0 + 1.0 * np.exp(-t), atol=1e-8)
    np.testing.assert_array_equal(a.X[:, 0], [0.5] * 3 + [1.0] * 3)
    with pytest.raises(InputError, match="initial_states"):
        bs.datasets.simulate_ode_system(eq, 3, initial_states=np.zeros((2, 2)))
    with pytest.raises(InputError, match="times"):
        bs.datasets.simulate_ode_system(eq, 1, times=(3, 1))


def test_hill_function_anchor_points():
    ec50 = np.array([0.4, 0.5, 0.6])
    n = np.array([1.4, 1.6, 1.8])
    np.testing.assert_allclose(hill_activation(np.zeros(3), ec50, n), 0, atol=1e-15)
    np.testing.assert_allclose(hill_activation(ec50, ec50, n), 0.5)
    np.testing.assert_allclose(hill_activation(np.ones(3), ec50, n), 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("-2 ^ 2", -4.0),
        ("2 ** 3 ** 2", 512.0),
        ("8 / 4 / 2", 1.0),
        ("1 - - 1", 2.0),
        ("1e-1 * 10", 1.0),
        ("a * b - a", 8.0),
        ("sqrt(b) + exp(0)", 1 + 5**0.5),
        ("0 + 1 * a * 1 / 1 - 0", 2.0),
        ("fAct(a, 0.5, 2)", 6 / 4.5),
        ("fAct(a, b / 10, 1 + 1)", 6 / 4.5),
    ],
)
def test_parser_arithmetic(text, expected):
    system = compile_system({"a": text}, constants=["b"])
    out = system.rhs(np.array([[2.0]]), np.array([[5.0]]))
    np.testing.assert_allclose(out, [[expected]])


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "a.__class__",
        "eval(a)",
        "a; b",
        "lambda: 1",
        "(a + 1",
        "a +",
        "fAct(a, 1)",
        "a[0]",
    ],
)
def test_parser_rejects_unsafe_or_malformed(text):
    with pytest.raises(InputError):
        compile_system({"a": text}, constants=["b"])


def test_unknown_variable_is_reported():
    with pytest.raises(InputError, match="'zzz'"):
        compile_system({"a": "zzz + 1"})
    assert parse_expression("fAct(x, 0.5, 2)")[0] == "call"


@pytest.mark.parametrize(("noise", "n_moved"), [(0.0, 0), (0.025, 54), (0.05, 108), (0.1, 216)])
def test_corrupt_prior_moves_exact_fraction(noise, n_moved):
    truth = bs.datasets.sim690_system().true_network
    out = bs.datasets.corrupt_prior(truth, noise, seed=7)
    assert (out != 0).sum() == (truth != 0).sum()
    assert (out > 0).sum() == (truth > 0).sum() and (out < 0).sum() == (truth < 0).sum()
    assert np.all(np.diag(out) == np.diag(truth))
    moved = (truth != 0) & (out == 0)
    assert moved.sum() == n_moved
    # edges that stayed keep their value
    kept = (truth != 0) & (out != 0)
    np.testing.assert_array_equal(out[kept], truth[kept])
    np.testing.assert_array_equal(out, bs.datasets.corrupt_prior(truth, noise, seed=7))


def test_corrupt_prior_matches_published_move_counts(grn_dir):
    # the published SIM350 priors moved 27 / 55 / 110 of 550 edges
    names = bs.datasets.read_gene_names(grn_dir / "sim350" / "gene_names.csv")
    truth = bs.datasets.read_prior(grn_dir / "sim350" / "prior_noise_0.0.csv", names)
    for noise, expected in ((0.025, 27), (0.05, 55), (0.1, 110)):
        published = bs.datasets.read_prior(grn_dir / "sim350" / f"prior_noise_{noise}.csv", names)
        assert ((truth != 0) & (published == 0)).sum() == expected
        ours = bs.datasets.corrupt_prior(truth, noise, seed=0)
        assert ((truth != 0) & (ours == 0)).sum() == expected


def test_corrupt_prior_errors():
    with pytest.raises(InputError, match="square"):
        bs.datasets.corrupt_prior(np.zeros((2, 3)), 0.1)
    with pytest.raises(InputError, match="noise"):
        bs.datasets.corrupt_prior(np.eye(3), 0.7)
