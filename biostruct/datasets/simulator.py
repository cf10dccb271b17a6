"""The SIM690/SIM350 simulator: the published ODE systems, initial conditions, prior corruption.

The systems come from the DASH/PHOENIX ground-truth simulator (a port of its R code's model,
see ``/work/shared/research/dash_phoenix.md`` section 4.3): every non-input gene follows
``dx_j/dt = act_j(x) - x_j`` where ``act_j`` is a logic formula of normalised Hill functions
``fAct``; input genes are constants. The formulas are read from the published text files with a
safe parser (:mod:`biostruct.datasets.equations`), never ``eval``.
"""

from __future__ import annotations

import gzip
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from biostruct.datasets.equations import (
    CompiledSystem,
    compile_system,
    parse_expression,
    variables,
)
from biostruct.errors import InputError, SolverError

if TYPE_CHECKING:  # pragma: no cover
    import anndata as ad

__all__ = [
    "OdeSystem",
    "sim690_system",
    "sim350_system",
    "simulate_ode_system",
    "simulate_sim690",
    "simulate_sim350",
    "random_initial_states",
    "corrupt_prior",
    "DEFAULT_TIMES",
]

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
DEFAULT_TIMES = (0.0, 2.0, 3.0, 7.0, 9.0)
INPUT_MARK = "input gene"
NOISES = ("0.0", "0.025", "0.05", "0.1")


@dataclass
class OdeSystem:
    """A published ODE system with its gene order and networks.

    Attributes
    ----------
    name
        Short name (``sim690``, ``sim350_edge_removed_variant``).
    equations
        DataFrame with columns ``node`` and ``eqn`` (``"input gene"`` marks a constant).
    gene_names
        Output gene order (names of input genes may carry the suffix ``_input``).
    priors
        ``prior_noise_<x>`` -> dense signed ``G x G`` matrix (row = regulator) in gene order.
    true_network
        Signed ``G x G`` matrix of the edges present in these equations.
    """

    name: str
    equations: pd.DataFrame
    gene_names: list[str]
    priors: dict[str, np.ndarray] = field(default_factory=dict)
    true_network: np.ndarray | None = None


def _read_embedded_network(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as z:
        names = [str(s) for s in z["gene_names"]]
        g = len(names)
        priors = {}
        for noise in NOISES:
            m = np.zeros((g, g), dtype=np.float64)
            r, c = z[f"prior_{noise}_row"], z[f"prior_{noise}_col"]
            m[r.astype(np.intp), c.astype(np.intp)] = z[f"prior_{noise}_val"].astype(np.float64)
            priors[f"prior_noise_{noise}"] = m
    return names, priors


def _read_equations(path: Path) -> pd.DataFrame:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)


def equation_edges(equations: pd.DataFrame, gene_names: Sequence[str]) -> np.ndarray:
    """Binary ``G x G`` matrix: 1 where gene ``i`` appears in the equation of gene ``j``
    (self-references from the decay term ``- x_j`` are not edges)."""
    idx = _node_index(equations, gene_names)
    out = np.zeros((len(gene_names), len(gene_names)), dtype=np.float64)
    for node, eqn in zip(equations["node"], equations["eqn"]):
        if eqn.strip() == INPUT_MARK:
            continue
        j = idx[node]
        calls = _hill_regulators(parse_expression(eqn, f"equation of {node!r}"))
        for reg in calls:
            out[idx[reg], j] = 1.0
    return out


def _hill_regulators(node: tuple) -> set[str]:
    if node[0] == "call" and node[1] == "fAct":
        return variables(node[2])
    if node[0] in ("num", "var"):
        return set()
    children = node[2:] if node[0] == "call" else node[1:]
    out: set[str] = set()
    for c in children:
        out |= _hill_regulators(c)
    return out


@cache
def _sim690() -> OdeSystem:
    names, priors = _read_embedded_network(EMBEDDED_DIR / "sim690_network.npz")
    eq = _read_equations(EMBEDDED_DIR / "sim690_ode_system.csv.gz")
    return OdeSystem("sim690", eq, names, priors, priors["prior_noise_0.0"].copy())


@cache
def _sim350() -> OdeSystem:
    names, priors = _read_embedded_network(EMBEDDED_DIR / "sim350_network.npz")
    eq = _read_equations(EMBEDDED_DIR / "sim350_edge_removed_variant_ode_system.csv.gz")
    truth = priors["prior_noise_0.0"] * equation_edges(eq, names)
    return OdeSystem("sim350_edge_removed_variant", eq, names, priors, truth)


def _copy(s: OdeSystem) -> OdeSystem:
    return OdeSystem(
        s.name,
        s.equations.copy(),
        list(s.gene_names),
        {k: v.copy() for k, v in s.priors.items()},
        None if s.true_network is None else s.true_network.copy(),
    )


def sim690_system() -> OdeSystem:
    """The embedded SIM690 system (exact generator of the published SIM690 test set)."""
    return _copy(_sim690())


def sim350_system() -> OdeSystem:
    """The embedded SIM350 *edge-removed variant* (phoenix ``ode_system_functions_350.csv``).

    Not the generator of the SIM350 test set: REB1->SIN3, GLN3->FUR4 and UME6->GAL1 are missing
    (SIN3 therefore has no regulator and is constant). ``true_network`` is the SIM350 ground
    truth restricted to the edges present in these equations (547 of 550); ``priors`` are the
    published SIM350 priors (made from the full 550-edge network).
    """
    return _copy(_sim350())


def _node_index(equations: pd.DataFrame, gene_names: Sequence[str]) -> dict[str, int]:
    pos = {n: i for i, n in enumerate(gene_names)}
    out = {}
    for node in equations["node"]:
        if node in pos:
            out[node] = pos[node]
        elif f"{node}_input" in pos:
            out[node] = pos[f"{node}_input"]
        else:
            raise InputError(
                f"equation node {node!r} is not in gene_names (nor {node + '_input'!r})",
                field="gene_names",
                fix="pass the gene names that belong to this system.",
            )
    if len(out) != len(gene_names):
        missing = sorted(set(gene_names) - {gene_names[i] for i in out.values()})[:5]
        raise InputError(
            f"{len(gene_names)} gene names but {len(out)} equations; no equation for {missing}",
            field="gene_names",
            fix="give one equation per gene.",
        )
    return out


@lru_cache(maxsize=8)
def _compiled(
    state_nodes: tuple[str, ...], eqns: tuple[str, ...], const_nodes: tuple[str, ...]
) -> CompiledSystem:
    return compile_system(dict(zip(state_nodes, eqns)), constants=const_nodes)


def random_initial_states(
    n_trajectories: int, is_input: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Random initial states as in the DASH simulator (``n_trajectories x G``).

    Output genes: ``Beta(2, 2)`` plus a per-gene shift ``U(-0.25, 0.25)``, clipped to [0, 1].
    Input genes: a per-gene mean ``~ Beta(10, 10)`` and sd
    ``max(Beta(15, 15) * min(mean, 1 - mean) / 3, 0.01)``; values ``~ N(mean, sd)`` redrawn until
    they fall in [0, 1].
    """
    is_input = np.asarray(is_input, dtype=bool)
    g = is_input.size
    x = np.empty((n_trajectories, g), dtype=np.float64)
    out_idx = np.flatnonzero(~is_input)
    shift = rng.uniform(-0.25, 0.25, size=out_idx.size)
    x[:, out_idx] = np.clip(rng.beta(2, 2, size=(n_trajectories, out_idx.size)) + shift, 0, 1)
    in_idx = np.flatnonzero(is_input)
    mean = rng.beta(10, 10, size=in_idx.size)
    sd = np.maximum(rng.beta(15, 15, size=in_idx.size) * np.minimum(mean, 1 - mean) / 3, 0.01)
    vals = rng.normal(mean, sd, size=(n_trajectories, in_idx.size))
    bad = (vals < 0) | (vals > 1)
    while bad.any():
        cols = np.nonzero(bad)[1]
        vals[bad] = rng.normal(mean[cols], sd[cols])
        bad = (vals < 0) | (vals > 1)
    x[:, in_idx] = vals
    return x


def simulate_ode_system(
    equations: pd.DataFrame | str | Path,
    n_trajectories: int,
    times: Sequence[float] = DEFAULT_TIMES,
    noise_sd: float = 0.0,
    seed: int = 0,
    *,
    gene_names: Sequence[str] | None = None,
    initial_states: np.ndarray | None = None,
    method: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
) -> ad.AnnData:
    """Simulate trajectories of an ODE system given as equation strings.

    Parameters
    ----------
    equations
        DataFrame (or CSV path) with columns ``node`` and ``eqn``; ``eqn == "input gene"`` marks
        a constant input. Equations may use numbers, node names, ``+ - * / ^``, parentheses and
        ``fAct(x, EC50, n)``, ``exp``, ``log``, ``sqrt``.
    n_trajectories
        Number of trajectories.
    times
        Observation times (sorted, >= 0); the initial state is at t = 0.
    noise_sd
        Standard deviation of Gaussian noise added to the observed values (``X``); the
        noise-free values are kept in ``layers["clean"]``.
    seed
        Seed of the initial states and the noise.
    gene_names
        Output gene order; a name may be a node name or the node name plus ``_input``.
        Default: the order of ``equations``.
    initial_states
        ``n_trajectories x G`` initial values in gene order (instead of random ones).
    method, rtol, atol
        :func:`scipy.integrate.solve_ivp` settings. All trajectories are integrated at once on
        the flattened state. The default DOP853 suits this non-stiff system; ``LSODA`` would build
        a dense Jacobian of the flattened state and is only sensible for a few trajectories.

    Returns
    -------
    AnnData
        ``n_trajectories * len(times)`` observations x G genes. ``X`` float64 (noisy);
        ``layers["clean"]``; ``obs["trajectory"]`` (categorical ``"0"``, ...), ``obs["time"]``;
        ``var["is_input"]``; ``varp["equation_edges"]`` (binary, regulator rows);
        ``uns["simulation"]`` (settings).

    Raises
    ------
    InputError
        Bad equations, names, times or initial states.
    SolverError
        The integration failed.
    """
    import anndata as ad
    from scipy.integrate import solve_ivp

    if isinstance(equations, str | Path):
        equations = _read_equations(Path(equations))
    for col in ("node", "eqn"):
        if col not in equations.columns:
            raise InputError(
                f"column {col!r} missing (columns: {list(equations.columns)})",
                field="equations",
                fix="give a table with columns 'node' and 'eqn'.",
            )
    eq = equations.astype({"node": str, "eqn": str})
    names = list(gene_names) if gene_names is not None else eq["node"].tolist()
    idx = _node_index(eq, names)
    is_const = (eq["eqn"].str.strip() == INPUT_MARK).to_numpy()
    const_nodes = eq["node"][is_const].tolist()
    state_nodes = eq["node"][~is_const].tolist()
    system = compile_system(dict(zip(state_nodes, eq["eqn"][~is_const])), constants=const_nodes)
    g = len(names)
    is_input = np.zeros(g, dtype=bool)
    is_input[[idx[n] for n in const_nodes]] = True

    t_obs = np.asarray(times, dtype=np.float64)
    if t_obs.ndim != 1 or t_obs.size == 0 or (t_obs < 0).any() or (np.diff(t_obs) < 0).any():
        raise InputError(
            f"times must be a non-empty sorted sequence of values >= 0, got {list(times)}",
            field="times",
            fix="e.g. times=(0, 2, 3, 7, 9).",
        )
    if not (isinstance(n_trajectories, int | np.integer) and n_trajectories >= 1):
        raise InputError(
            f"n_trajectories must be a positive integer, got {n_trajectories!r}",
            field="n_trajectories",
            fix="pass e.g. n_trajectories=150.",
        )
    if noise_sd < 0 or not math.isfinite(noise_sd):
        raise InputError(
            f"noise_sd must be >= 0, got {noise_sd}", field="noise_sd", fix="e.g. noise_sd=0.025."
        )
    rng = np.random.default_rng(seed)
    if initial_states is None:
        x0 = random_initial_states(int(n_trajectories), is_input, rng)
    else:
        x0 = np.asarray(initial_states, dtype=np.float64)
        if x0.shape != (n_trajectories, g) or not np.isfinite(x0).all():
            raise InputError(
                f"initial_states must be a finite array of shape ({n_trajectories}, {g}), got "
                f"shape {x0.shape}",
                field="initial_states",
                fix="one row per trajectory, one column per gene in gene order.",
            )
    s_cols = np.asarray([idx[n] for n in state_nodes], dtype=np.intp)
    c_cols = np.asarray([idx[n] for n in const_nodes], dtype=np.intp)
    b = int(n_trajectories)
    consts = np.ascontiguousarray(x0[:, c_cols].T)
    y0 = np.ascontiguousarray(x0[:, s_cols].T).ravel()
    n_s = len(state_nodes)

    work = system.workspace(b)

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        return system.rhs(y.reshape(n_s, b), consts, work).ravel()

    clean = np.empty((b, t_obs.size, g), dtype=np.float64)
    clean[:, :, c_cols] = x0[:, None, c_cols]
    if n_s:
        t_end = float(t_obs[-1])
        if t_end > 0:
            sol = solve_ivp(
                rhs, (0.0, t_end), y0, method=method, t_eval=t_obs, rtol=rtol, atol=atol
            )
            if not sol.success or not np.isfinite(sol.y).all():
                raise SolverError(
                    f"integration failed: {sol.message}",
                    field="simulate_ode_system",
                    fix="check the equations and initial states; try method='LSODA' or looser "
                    "tolerances.",
                )
            states = sol.y.reshape(n_s, b, t_obs.size)
        else:
            states = np.repeat(y0.reshape(n_s, b)[:, :, None], t_obs.size, axis=2)
        clean[:, :, s_cols] = states.transpose(1, 2, 0)
    clean = clean.reshape(b * t_obs.size, g)
    noisy = clean + rng.normal(0.0, noise_sd, size=clean.shape) if noise_sd > 0 else clean.copy()

    traj = np.repeat(np.arange(b), t_obs.size)
    obs = pd.DataFrame(
        {
            "trajectory": pd.Categorical.from_codes(traj, categories=[str(k) for k in range(b)]),
            "time": np.tile(t_obs, b),
        },
        index=pd.Index([f"traj{k}_t{i}" for k in range(b) for i in range(t_obs.size)]),
    )
    adata = ad.AnnData(X=noisy, obs=obs, var=pd.DataFrame(index=pd.Index(names)))
    adata.layers["clean"] = clean
    adata.var["is_input"] = is_input
    adata.varp["equation_edges"] = equation_edges(eq, names)
    adata.uns["simulation"] = {
        "n_trajectories": b,
        "times": t_obs,
        "noise_sd": float(noise_sd),
        "seed": int(seed),
        "method": method,
        "rtol": rtol,
        "atol": atol,
        "initial_states": "given" if initial_states is not None else "random (DASH simulator)",
    }
    return adata


def _simulate_named(
    system: OdeSystem,
    n_trajectories: int,
    times: Sequence[float],
    noise_sd: float,
    seed: int,
    initial_states: np.ndarray | None,
    **kwargs: Any,
) -> ad.AnnData:
    adata = simulate_ode_system(
        system.equations,
        n_trajectories,
        times,
        noise_sd,
        seed,
        gene_names=system.gene_names,
        initial_states=initial_states,
        **kwargs,
    )
    adata.varp["true_network"] = system.true_network
    for k, v in system.priors.items():
        adata.varp[k] = v
    adata.uns["simulation"]["system"] = system.name
    return adata


def simulate_sim690(
    n_trajectories: int,
    times: Sequence[float] = DEFAULT_TIMES,
    noise_sd: float = 0.0,
    seed: int = 0,
    *,
    initial_states: np.ndarray | None = None,
    **kwargs: Any,
) -> ad.AnnData:
    """Simulate the SIM690 network (the exact published system, embedded in the package).

    Parameters
    ----------
    n_trajectories, times, noise_sd, seed, initial_states
        See :func:`simulate_ode_system`. ``initial_states`` is ``n_trajectories x 690`` in the
        published gene order (97 ``_input`` genes first).
    **kwargs
        ``method``, ``rtol``, ``atol`` for the solver.

    Returns
    -------
    AnnData
        As :func:`simulate_ode_system`, plus ``varp["true_network"]`` (signed, 1,082 edges) and
        ``varp["prior_noise_{0.0,0.025,0.05,0.1}"]`` (the published DASH priors).
    """
    return _simulate_named(
        _sim690(), n_trajectories, times, noise_sd, seed, initial_states, **kwargs
    )


def simulate_sim350(
    n_trajectories: int,
    times: Sequence[float] = DEFAULT_TIMES,
    noise_sd: float = 0.0,
    seed: int = 0,
    *,
    initial_states: np.ndarray | None = None,
    **kwargs: Any,
) -> ad.AnnData:
    """Simulate the SIM350 *edge-removed variant* (see :func:`sim350_system`).

    The exact SIM350 generator is not published; this variant lacks 3 of the 550 edges and
    reproduces the SIM350 test set only approximately: from the test set's t = 0 states, the
    absolute error over all 10 trajectories has median 0.0027 and maximum 0.57 (largest for SIN3,
    a constant here, and its targets).
    ``varp["true_network"]`` holds the 547 edges present in the simulated equations; the
    ``prior_noise_*`` matrices are the published SIM350 priors.
    """
    return _simulate_named(
        _sim350(), n_trajectories, times, noise_sd, seed, initial_states, **kwargs
    )


def corrupt_prior(true_network: np.ndarray, noise: float, seed: int = 0) -> np.ndarray:
    """Relocate a fraction ``noise / 0.5`` of the edges, as the DASH priors were made.

    ``floor(noise / 0.5 * n_edges)`` edges, chosen at random, move (with their sign and value)
    to random off-diagonal cells that hold no edge in ``true_network``; all other edges stay.
    The edge count and the multiset of values are preserved. (DASH's published files match this
    count: e.g. noise 0.025 moves 27 of SIM350's 550 edges.)

    Parameters
    ----------
    true_network
        Square signed matrix (row = regulator), non-zero = edge.
    noise
        Prior noise level in [0, 0.5]; 0.5 moves every edge.
    seed
        Random seed.

    Returns
    -------
    numpy.ndarray
        The corrupted matrix (a new array, same dtype).
    """
    m = np.asarray(true_network)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InputError(
            f"true_network must be square, got shape {m.shape}",
            field="true_network",
            fix="pass a G x G matrix.",
        )
    if not (0.0 <= noise <= 0.5):
        raise InputError(
            f"noise must be in [0, 0.5], got {noise}",
            field="noise",
            fix="the fraction of moved edges is noise / 0.5.",
        )
    g = m.shape[0]
    edges = np.flatnonzero(m.ravel())
    n_move = int(math.floor(noise / 0.5 * edges.size + 1e-9))
    free = np.flatnonzero((m.ravel() == 0) & ~np.eye(g, dtype=bool).ravel())
    if n_move > free.size:
        raise InputError(
            f"cannot move {n_move} edges: only {free.size} empty off-diagonal cells",
            field="true_network",
            fix="use a lower noise level or a sparser network.",
        )
    rng = np.random.default_rng(seed)
    src = rng.choice(edges, size=n_move, replace=False)
    dst = rng.choice(free, size=n_move, replace=False)
    out = m.copy().ravel()
    out[dst] = out[src]
    out[src] = 0
    return out.reshape(m.shape)
