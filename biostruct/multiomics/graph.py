"""DAG specification of a multi-omics model: modalities, components and their parent edges.

A graph is written as a dict or YAML document::

    modalities:
      atac: {likelihood: bernoulli}
      rna: {likelihood: zinb}
    components:
      - name: atac
        modalities: [atac]
      - name: rna
        modalities: [rna]
        conditioned_on_z_hat: [atac]

``conditioned_on_z`` edges feed the parent's own latent ``z`` to the child; ``conditioned_on_z_hat``
edges feed the parent's integrated latent ``z_hat`` (which already carries the parent's ancestors).
``parents`` is a shorthand for ``conditioned_on_z_hat``.

An optional ``links`` entry (one mapping or a list) puts a sparse feature-level link layer on a
DAG edge, e.g. peaks -> genes (see :mod:`biostruct.multiomics.links`)::

    links: {from: atac, to: rna, prior: proximity, window_kb: 100, sparsity: 0.95, method: dash}
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from biostruct.errors import ConfigError, GraphError

__all__ = [
    "LIKELIHOODS",
    "LINK_METHODS",
    "LINK_PRIORS",
    "ROLES",
    "ComponentSpec",
    "DAGSpec",
    "LinkSpec",
    "ModalitySpec",
    "SparseDecoderSpec",
    "default_graph",
    "default_n_clusters",
    "describe_graph",
    "infer_role",
    "infer_roles",
    "parse_graph",
]

#: Names of the supported per-modality likelihoods.
LIKELIHOODS = ("nb", "zinb", "poisson", "bernoulli", "gaussian", "protein")

#: Assay roles a modality can have, and the likelihood each role gets by default.
ROLES = {"rna": "zinb", "atac": "bernoulli", "protein": "protein"}

# Names (lower case, only letters and digits kept) that imply a role. 10x ``feature_types`` values
# ("Gene Expression", "Peaks", "Antibody Capture") normalise to entries of this table too.
_ROLE_NAMES = {
    "rna": "rna",
    "gex": "rna",
    "geneexpression": "rna",
    "expression": "rna",
    "scrna": "rna",
    "mrna": "rna",
    "atac": "atac",
    "peaks": "atac",
    "peak": "atac",
    "chromatinaccessibility": "atac",
    "accessibility": "atac",
    "scatac": "atac",
    "adt": "protein",
    "prot": "protein",
    "protein": "protein",
    "proteins": "protein",
    "antibodycapture": "protein",
    "cite": "protein",
    "citeseq": "protein",
}


def _normalise_name(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def infer_role(name: str, adata: Any = None) -> str | None:
    """Assay role (``"rna"``, ``"atac"``, ``"protein"``) of a modality, or None if unknown.

    The modality name decides first (case-insensitive; ``rna``/``gex``/``gene expression``,
    ``atac``/``peaks``, ``adt``/``prot``/``protein``); otherwise the most common value of
    ``adata.var["feature_types"]`` (10x: ``Gene Expression``, ``Peaks``, ``Antibody Capture``).
    """
    role = _ROLE_NAMES.get(_normalise_name(name))
    if role is not None:
        return role
    var = getattr(adata, "var", None)
    if var is not None and "feature_types" in getattr(var, "columns", ()):
        counts = var["feature_types"].astype(str).value_counts()
        if len(counts):
            return _ROLE_NAMES.get(_normalise_name(counts.index[0]))
    return None


def infer_roles(modalities: Mapping[str, Any] | Iterable[str]) -> dict[str, str | None]:
    """Role of every modality: ``{name: role or None}`` (see :func:`infer_role`)."""
    if isinstance(modalities, Mapping):
        return {str(m): infer_role(m, a) for m, a in modalities.items()}
    return {str(m): infer_role(m) for m in modalities}


_TOP_KEYS = ("modalities", "components", "links")
_LINK_KEYS = (
    "from",
    "to",
    "prior",
    "source",
    "tss",
    "window_kb",
    "decay_kb",
    "sparsity",
    "method",
    "prior_weight",
    "rounds",
    "weight_decay",
)
#: Where a link layer's candidate links come from (see :mod:`biostruct.multiomics.links`).
LINK_PRIORS = ("proximity", "matrix", "names", "table")
#: How the link layer's masks are scored at each pruning round (the core's scorers).
LINK_METHODS = ("dash", "magnitude", "random")
_MODALITY_KEYS = ("likelihood", "weight", "layer")
_COMPONENT_KEYS = (
    "name",
    "modalities",
    "conditioned_on_z",
    "conditioned_on_z_hat",
    "parents",
    "n_latent",
    "n_clusters",
    "n_layers",
    "n_hidden",
    "sparse_decoder",
)
_DECODER_KEYS = ("sparsity", "rounds", "method", "weight_decay")


def _check_keys(given: Iterable[str], valid: tuple[str, ...], where: str) -> None:
    for key in given:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}."
            raise ConfigError(f"unknown key {key!r}.", field=f"{where}.{key}", fix=hint)


@dataclass(frozen=True)
class ModalitySpec:
    """One modality: its likelihood, its weight inside its component and the AnnData layer read."""

    name: str
    likelihood: str
    weight: float = 1.0
    layer: str | None = None


@dataclass(frozen=True)
class SparseDecoderSpec:
    """An LDVAE-style sparse linear decoder for a component's modalities.

    Each modality's likelihood head gets ``W z_hat`` (features x latent dims) plus per-batch
    intercepts, and ``W`` is pruned by :mod:`biostruct.sparsity` to ``sparsity`` in ``rounds``
    rounds (``method``: ``magnitude`` or ``random``), with optional ``weight_decay`` switched
    off at the last round. YAML (component level)::

        - {name: rna, modalities: [rna], parents: [atac], sparse_decoder: {sparsity: 0.9}}
    """

    sparsity: float = 0.9
    rounds: int = 4
    method: str = "magnitude"
    weight_decay: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The YAML form."""
        return {k: getattr(self, k) for k in _DECODER_KEYS}


@dataclass(frozen=True)
class ComponentSpec:
    """One component: its modalities, its parents and its latent size.

    ``n_latent``/``n_clusters``/``n_layers``/``n_hidden`` left as ``None`` take the model's
    defaults.
    """

    name: str
    modalities: tuple[str, ...]
    conditioned_on_z: tuple[str, ...] = ()
    conditioned_on_z_hat: tuple[str, ...] = ()
    n_latent: int | None = None
    n_clusters: int | None = None
    n_layers: int | None = None
    n_hidden: int | None = None
    sparse_decoder: SparseDecoderSpec | None = None

    @property
    def parents(self) -> tuple[str, ...]:
        """All parents, ``conditioned_on_z`` first."""
        return self.conditioned_on_z + self.conditioned_on_z_hat


@dataclass(frozen=True)
class LinkSpec:
    """A sparse feature-level link layer on a DAG edge: ``parent`` features -> ``child`` features.

    ``parent`` and ``child`` are modalities (YAML ``from`` / ``to``); the parent's component must
    be an ancestor of the child's. ``prior`` names where the candidate links come from:
    ``proximity`` (peak coordinates in the parent's feature names, gene TSS from ``tss``),
    ``matrix`` (a child x parent matrix at ``source``: ``.npz``/``.npy``/``.csv`` path or
    ``uns:KEY`` of the MuData), ``names`` (same feature name, e.g. protein -> gene) or ``table``
    (a CSV at ``source`` with ``source, target[, weight]`` columns). ``sparsity`` is the fraction
    of the candidate links pruned by the end of training, in ``rounds`` rounds, scored by
    ``method``: ``dash`` (``(1 - prior_weight) * |w| + prior_weight * prior``, both normalised),
    ``magnitude`` (``|w|``) or ``random``. ``weight_decay`` (torch units, default 1.0) is applied
    to the link weights until the last pruning round and then switched off.
    """

    parent: str
    child: str
    prior: str = "proximity"
    source: str | None = None
    tss: str | None = None
    window_kb: float = 100.0
    decay_kb: float | None = None
    sparsity: float = 0.9
    method: str = "dash"
    prior_weight: float = 0.5
    rounds: int = 4
    weight_decay: float = 1.0

    @property
    def name(self) -> str:
        """``"parent->child"``."""
        return f"{self.parent}->{self.child}"

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (``from``/``to`` keys); unset optional fields left out."""
        d: dict[str, Any] = {"from": self.parent, "to": self.child}
        for k in _LINK_KEYS[2:]:
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        return d


@dataclass(frozen=True)
class DAGSpec:
    """A validated DAG of components (``components`` are stored in topological order)."""

    modalities: dict[str, ModalitySpec]
    components: tuple[ComponentSpec, ...]
    _by_name: dict[str, ComponentSpec] = field(default_factory=dict, repr=False, compare=False)
    links: tuple[LinkSpec, ...] = ()

    def __post_init__(self) -> None:
        self._by_name.update({c.name: c for c in self.components})

    @property
    def order(self) -> list[str]:
        """Component names, parents before children."""
        return [c.name for c in self.components]

    def __getitem__(self, name: str) -> ComponentSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise GraphError(
                f"unknown component {name!r}.",
                field="component",
                fix=f"use one of {self.order}.",
            ) from None

    def component_of(self, modality: str) -> str:
        """Name of the component that decodes ``modality``."""
        for c in self.components:
            if modality in c.modalities:
                return c.name
        raise GraphError(
            f"modality {modality!r} is in no component.",
            field="modality",
            fix=f"use one of {list(self.modalities)}.",
        )

    def ancestors(self, name: str) -> list[str]:
        """All ancestors of a component, in topological order."""
        seen: set[str] = set()
        stack = list(self[name].parents)
        while stack:
            p = stack.pop()
            if p not in seen:
                seen.add(p)
                stack.extend(self[p].parents)
        return [c for c in self.order if c in seen]

    def descendants(self, name: str) -> list[str]:
        """All descendants of a component, in topological order."""
        out = [c.name for c in self.components if c.name != name and name in self.ancestors(c.name)]
        return out

    def levels(self) -> dict[str, int]:
        """Level of each component: 0 for roots, 1 + the deepest parent otherwise."""
        lv: dict[str, int] = {}
        for c in self.components:
            lv[c.name] = 1 + max((lv[p] for p in c.parents), default=-1)
        return lv

    def validate_modalities(self, available: Iterable[str]) -> None:
        """Raise :class:`GraphError` if a modality of the graph is missing from the data."""
        available = list(available)
        for m in self.modalities:
            if m not in available:
                raise GraphError(
                    f"modality {m!r} is in the graph but not in the data (data has {available}).",
                    field=f"modalities.{m}",
                    fix="rename the modality in the graph or add it to the MuData/dict.",
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (YAML/JSON serialisable) that :func:`parse_graph` reads back."""
        mods = {}
        for m in self.modalities.values():
            d: dict[str, Any] = {"likelihood": m.likelihood, "weight": m.weight}
            if m.layer is not None:
                d["layer"] = m.layer
            mods[m.name] = d
        comps = []
        for c in self.components:
            d = {"name": c.name, "modalities": list(c.modalities)}
            if c.conditioned_on_z:
                d["conditioned_on_z"] = list(c.conditioned_on_z)
            if c.conditioned_on_z_hat:
                d["conditioned_on_z_hat"] = list(c.conditioned_on_z_hat)
            for k in ("n_latent", "n_clusters", "n_layers", "n_hidden"):
                if getattr(c, k) is not None:
                    d[k] = getattr(c, k)
            if c.sparse_decoder is not None:
                d["sparse_decoder"] = c.sparse_decoder.to_dict()
            comps.append(d)
        out: dict[str, Any] = {"modalities": mods, "components": comps}
        if self.links:
            out["links"] = [lk.to_dict() for lk in self.links]
        return out

    def to_h5_dict(self) -> dict[str, Any]:
        """Like :meth:`to_dict` but with components as ``{name: settings}`` (storable in .h5mu)."""
        d = self.to_dict()
        d["components"] = {
            c["name"]: {k: v for k, v in c.items() if k != "name"} for c in d["components"]
        }
        if "links" in d:
            d["links"] = {lk.name: lk.to_dict() for lk in self.links}
        return d

    def to_yaml(self) -> str:
        """YAML text of :meth:`to_dict`."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def with_defaults(
        self,
        n_latent: int,
        n_clusters: int | None,
        n_layers: int,
        n_hidden: int,
        n_train: int | None = None,
    ) -> DAGSpec:
        """Copy with every unset per-component size filled in.

        ``n_clusters`` defaults to :func:`default_n_clusters` (2d+1, fewer on few training
        cells ``n_train``).
        """
        comps = []
        for c in self.components:
            d = c.n_latent or n_latent
            k = c.n_clusters or n_clusters or default_n_clusters(d, n_train)
            comps.append(
                replace(
                    c,
                    n_latent=d,
                    n_clusters=k,
                    n_layers=c.n_layers or n_layers,
                    n_hidden=c.n_hidden or n_hidden,
                )
            )
        return DAGSpec(dict(self.modalities), tuple(comps), links=self.links)


#: training cells per free parameter of a mixture component (d means, d scales, one weight)
CELLS_PER_MIXTURE_PARAMETER = 5


def default_n_clusters(n_latent: int, n_train: int | None = None) -> int:
    """Mixture components of a component's prior when none are given.

    2d+1 (CAVACHON's default), reduced on small data so that each component has at least
    :data:`CELLS_PER_MIXTURE_PARAMETER` of the ``n_train`` training cells per free parameter:
    K = min(2d+1, max(1, n_train // (5 (2d+1)))). With d = 10 and the default 10 % held out
    for early stopping that is 4 components at 550 cells, 12 at 1,500 and 2d+1 = 21 from 2,450.

    Why: on 550-cell subsets of the DEV sets 21 components split large populations into
    separate blobs of the latent (CITE-seq integrated-latent ARI 0.800 with 21, 0.844 with 4;
    SNARE-seq 0.365 vs 0.385, but 0.441 vs 0.426 on its 23 fine labels; 3 subsets x 3 seeds);
    at 1,500 cells 12 and 21 components were level (CITE-seq 0.878 vs 0.894, SNARE-seq 0.434
    vs 0.430). The mixture then models a few broad populations; finer types are left to
    Leiden on the latent (``obs["dagvae_leiden_<component>"]``).
    """
    full = 2 * int(n_latent) + 1
    if n_train is None:
        return full
    return min(full, max(1, int(n_train) // (CELLS_PER_MIXTURE_PARAMETER * full)))


def _as_name_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        out = []
        for v in value:
            if isinstance(v, Mapping):  # CAVACHON-style {name: ...} entries
                if "name" not in v:
                    raise ConfigError("entry has no 'name'.", field=where, fix="add name: ...")
                v = v["name"]
            out.append(str(v))
        return tuple(out)
    raise ConfigError(
        f"expected a list of names, got {type(value).__name__}.", field=where, fix="write [a, b]."
    )


def _positive_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"must be a positive integer, got {value!r}.", field=where, fix="e.g. 10")
    return int(value)


def _find_cycle(parents: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """Return one cycle as a list of names (first == last), or None."""
    colour: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        colour[n] = 1
        path.append(n)
        for p in parents.get(n, ()):
            if colour.get(p) == 1:
                return path[path.index(p) :] + [p]
            if colour.get(p, 0) == 0:
                found = visit(p)
                if found:
                    return found
        colour[n] = 2
        path.pop()
        return None

    for n in parents:
        if colour.get(n, 0) == 0:
            found = visit(n)
            if found:
                return found
    return None


def parse_graph(
    spec: Mapping[str, Any] | str | Path | DAGSpec,
    roles: Mapping[str, str | None] | None = None,
) -> DAGSpec:
    """Validate a DAG specification and return it with components in topological order.

    Parameters
    ----------
    spec
        A dict, YAML text, a path to a YAML file, or an existing :class:`DAGSpec`.
    roles
        Assay role of each modality (see :func:`infer_roles`); a modality without a
        ``likelihood`` gets its role's default (:data:`ROLES`). Without it, the role is inferred
        from the modality name.

    Raises
    ------
    ConfigError
        Unknown keys (the closest valid key is suggested), wrong value types, unknown likelihood.
    GraphError
        Cycles (the cycle is named), unknown modalities or parents, duplicate names, a modality
        used by two components or by none.
    """
    if isinstance(spec, DAGSpec):
        return spec
    if isinstance(spec, Path) or (isinstance(spec, str) and "\n" not in spec and spec.strip()):
        path = Path(spec)
        if path.suffix in (".yaml", ".yml", ".json") or path.exists():
            if not path.exists():
                raise ConfigError(f"file {path} does not exist.", field="graph", fix="check path.")
            spec = path.read_text()
    if isinstance(spec, str):
        try:
            spec = yaml.safe_load(spec)
        except yaml.YAMLError as err:
            raise ConfigError(f"not valid YAML: {err}", field="graph", fix="fix the YAML.") from err
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"expected a mapping with 'components', got {type(spec).__name__}.",
            field="graph",
            fix="pass a dict or YAML text with a 'components' list.",
        )
    _check_keys(spec.keys(), _TOP_KEYS, "graph")
    raw_comps = spec.get("components")
    if isinstance(raw_comps, Mapping):  # {name: settings}, the form stored in .h5mu files
        raw_comps = [{"name": k, **dict(v or {})} for k, v in raw_comps.items()]
    if isinstance(raw_comps, tuple):
        raw_comps = list(raw_comps)
    if not raw_comps or not isinstance(raw_comps, list):
        raise ConfigError(
            "'components' must be a non-empty list.",
            field="graph.components",
            fix="add e.g. [{name: rna, modalities: [rna]}].",
        )

    # Modalities: explicit block, plus any named only inside components.
    raw_mods = spec.get("modalities") or {}
    if isinstance(raw_mods, list):  # CAVACHON style: list of {name, dist/likelihood}
        raw_mods = {str(m["name"]): {k: v for k, v in m.items() if k != "name"} for m in raw_mods}
    if not isinstance(raw_mods, Mapping):
        raise ConfigError(
            "'modalities' must map names to settings.",
            field="graph.modalities",
            fix="write modalities: {rna: {likelihood: zinb}}.",
        )
    modalities: dict[str, ModalitySpec] = {}
    for name, opts in raw_mods.items():
        if isinstance(opts, str):
            opts = {"likelihood": opts}
        if opts is not None and not isinstance(opts, Mapping):
            raise ConfigError(
                "modality settings must be a mapping.",
                field=f"modalities.{name}",
                fix="write {likelihood: zinb}.",
            )
        opts = dict(opts or {})
        if "dist" in opts and "likelihood" not in opts:  # CAVACHON's key
            opts["likelihood"] = opts.pop("dist")
        _check_keys(opts.keys(), _MODALITY_KEYS, f"modalities.{name}")
        modalities[str(name)] = _modality(str(name), opts, roles)

    comps: list[ComponentSpec] = []
    seen: set[str] = set()
    owner: dict[str, str] = {}
    for i, raw in enumerate(raw_comps):
        where = f"components[{i}]"
        if not isinstance(raw, Mapping):
            raise ConfigError("each component must be a mapping.", field=where, fix="use {name:}")
        _check_keys(raw.keys(), _COMPONENT_KEYS, where)
        if "name" not in raw:
            raise ConfigError("component has no name.", field=where, fix="add name: ...")
        name = str(raw["name"])
        where = f"components.{name}"
        if name in seen:
            raise GraphError(
                f"duplicate component name {name!r}.", field=where, fix="give each a unique name."
            )
        seen.add(name)
        mods = _as_name_list(raw.get("modalities"), f"{where}.modalities")
        if not mods:
            raise GraphError(
                "component has no modalities.", field=f"{where}.modalities", fix="list >= 1."
            )
        if len(set(mods)) != len(mods):
            raise GraphError(
                f"modality listed twice in {list(mods)}.", field=f"{where}.modalities", fix="dedup."
            )
        for m in mods:
            if m in owner:
                raise GraphError(
                    f"modality {m!r} is decoded by both {owner[m]!r} and {name!r}.",
                    field=f"{where}.modalities",
                    fix="give each modality to exactly one component.",
                )
            owner[m] = name
            if m not in modalities:
                if raw_mods:
                    close = difflib.get_close_matches(m, list(modalities), n=1)
                    raise GraphError(
                        f"unknown modality {m!r}.",
                        field=f"{where}.modalities",
                        fix=(f"did you mean {close[0]!r}?" if close else "")
                        + f" declared modalities: {list(modalities)}.",
                    )
                modalities[m] = _modality(m, {}, roles)
        on_z = _as_name_list(raw.get("conditioned_on_z"), f"{where}.conditioned_on_z")
        on_zh = _as_name_list(raw.get("conditioned_on_z_hat"), f"{where}.conditioned_on_z_hat")
        on_zh = on_zh + tuple(
            p for p in _as_name_list(raw.get("parents"), f"{where}.parents") if p not in on_zh
        )
        both = set(on_z) & set(on_zh)
        if both:
            raise GraphError(
                f"parents {sorted(both)} listed under both conditioned_on_z and "
                "conditioned_on_z_hat.",
                field=where,
                fix="keep each parent in one list.",
            )
        comps.append(
            ComponentSpec(
                name=name,
                modalities=mods,
                conditioned_on_z=on_z,
                conditioned_on_z_hat=on_zh,
                n_latent=_positive_int(raw.get("n_latent"), f"{where}.n_latent"),
                n_clusters=_positive_int(raw.get("n_clusters"), f"{where}.n_clusters"),
                n_layers=_positive_int(raw.get("n_layers"), f"{where}.n_layers"),
                n_hidden=_positive_int(raw.get("n_hidden"), f"{where}.n_hidden"),
                sparse_decoder=_sparse_decoder(
                    raw.get("sparse_decoder"), f"{where}.sparse_decoder"
                ),
            )
        )
    names = [c.name for c in comps]
    for c in comps:
        for p in c.parents:
            if p == c.name:
                raise GraphError(
                    f"component {c.name!r} is its own parent (cycle {c.name} -> {c.name}).",
                    field=f"components.{c.name}",
                    fix="remove the self edge.",
                )
            if p not in names:
                close = difflib.get_close_matches(p, names, n=1)
                raise GraphError(
                    f"unknown parent component {p!r}.",
                    field=f"components.{c.name}",
                    fix=(f"did you mean {close[0]!r}? " if close else "") + f"components: {names}.",
                )
    unused = [m for m in modalities if m not in owner]
    if unused:
        raise GraphError(
            f"modalities {unused} are declared but no component decodes them.",
            field="graph.modalities",
            fix="add them to a component or remove them.",
        )
    parents = {c.name: c.parents for c in comps}
    cycle = _find_cycle(parents)
    if cycle:
        # parents map child -> parent; print the cycle in the parent -> child direction
        arrow = " -> ".join(reversed(cycle))
        raise GraphError(
            f"the graph has a cycle: {arrow}.",
            field="graph.components",
            fix="remove one of these parent edges so that the graph is acyclic.",
        )
    # Kahn's algorithm, stable with respect to the written order.
    done: list[ComponentSpec] = []
    placed: set[str] = set()
    remaining = list(comps)
    while remaining:
        for c in remaining:
            if all(p in placed for p in c.parents):
                done.append(c)
                placed.add(c.name)
                remaining.remove(c)
                break
    graph = DAGSpec(modalities, tuple(done))
    links = _parse_links(spec.get("links"), graph)
    return replace(graph, links=links, _by_name={}) if links else graph


def _number(
    raw: Mapping[str, Any],
    key: str,
    where: str,
    default: Any,
    lo: float,
    hi: float,
    lo_open: bool,
    hi_open: bool,
    fix: str,
) -> Any:
    value = raw.get(key, default)
    if value is None:
        return None
    bad = isinstance(value, bool) or not isinstance(value, int | float)
    if not bad:
        value = float(value)
        bad = (value <= lo if lo_open else value < lo) or (value >= hi if hi_open else value > hi)
    if bad:
        lo_b, hi_b = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ConfigError(
            f"{key} must be a number in {lo_b}{lo}, {hi}{hi_b}, got {raw.get(key)!r}.",
            field=f"{where}.{key}",
            fix=fix,
        )
    return value


def _one_of(value: str, valid: Iterable[str], what: str, field: str) -> str:
    """``value`` if it is in ``valid``, else a ConfigError suggesting the closest valid name."""
    valid = list(valid)
    if value in valid:
        return value
    close = difflib.get_close_matches(value, valid, n=1)
    raise ConfigError(
        f"unknown {what} {value!r}.",
        field=field,
        fix=(f"did you mean {close[0]!r}? " if close else "") + f"use one of {valid}.",
    )


def _sparse_decoder(raw: Any, where: str) -> SparseDecoderSpec | None:
    """Validate a component's ``sparse_decoder`` block (``true`` for the defaults)."""
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            "sparse_decoder must be a mapping (or true).",
            field=where,
            fix="write sparse_decoder: {sparsity: 0.9}.",
        )
    _check_keys(raw.keys(), _DECODER_KEYS, where)
    method = _one_of(
        str(raw.get("method", "magnitude")).lower(),
        ("magnitude", "random"),
        "method",
        f"{where}.method",
    )
    return SparseDecoderSpec(
        sparsity=_number(raw, "sparsity", where, 0.9, 0.0, 1.0, False, True, "e.g. 0.9"),
        rounds=int(_positive_int(raw.get("rounds", 4), f"{where}.rounds") or 4),
        method=method,
        weight_decay=_number(raw, "weight_decay", where, 0.0, 0.0, 100.0, False, False, "e.g. 0"),
    )


def _parse_links(raw: Any, graph: DAGSpec) -> tuple[LinkSpec, ...]:
    """Validate the ``links`` block against the graph (see :class:`LinkSpec`)."""
    if raw is None:
        return ()
    if isinstance(raw, Mapping) and "from" not in raw and "to" not in raw:
        raw = list(raw.values())  # {name: settings}, the form stored in .h5mu files
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        raise ConfigError(
            f"'links' must be a mapping or a list of mappings, got {type(raw).__name__}.",
            field="graph.links",
            fix="write links: {from: atac, to: rna, prior: proximity, sparsity: 0.95}.",
        )
    out: list[LinkSpec] = []
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(raw):
        where = f"links[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError("each link must be a mapping.", field=where, fix="{from:, to:}")
        entry = dict(entry)
        prior = entry.get("prior", "proximity")
        if isinstance(prior, Mapping):  # {matrix: path} / {table: path} sugar
            if len(prior) != 1:
                raise ConfigError(
                    "prior as a mapping must have exactly one key.",
                    field=f"{where}.prior",
                    fix="write prior: {matrix: path.npz} or prior: {table: links.csv}.",
                )
            ((prior, src),) = prior.items()
            entry["source"] = src
        entry["prior"] = prior
        _check_keys(entry.keys(), _LINK_KEYS, where)
        for key in ("from", "to"):
            if key not in entry:
                raise ConfigError(
                    f"link has no {key!r}.", field=f"{where}.{key}", fix="name a modality."
                )
            _one_of(str(entry[key]), graph.modalities, "modality", f"{where}.{key}")
        parent, child = str(entry["from"]), str(entry["to"])
        pc, cc = graph.component_of(parent), graph.component_of(child)
        if pc not in graph.ancestors(cc):
            raise ConfigError(
                f"{parent!r} (component {pc!r}) is not an ancestor of {child!r} (component "
                f"{cc!r}): links follow the DAG's edges.",
                field=where,
                fix=f"add {pc!r} to the parents of {cc!r}, or swap from/to.",
            )
        if (parent, child) in seen:
            raise ConfigError(
                f"two links {parent} -> {child}.", field=where, fix="keep one per edge."
            )
        seen.add((parent, child))
        prior = _one_of(str(prior).lower(), LINK_PRIORS, "prior", f"{where}.prior")
        source = entry.get("source")
        if prior in ("matrix", "table") and not source:
            raise ConfigError(
                f"prior {prior!r} needs a source.",
                field=f"{where}.source",
                fix=f"write prior: {{{prior}: path}} (or source: path"
                + (", or uns:KEY of the MuData)." if prior == "matrix" else ")."),
            )
        method = _one_of(
            str(entry.get("method", "dash")).lower(), LINK_METHODS, "method", f"{where}.method"
        )
        rounds = _positive_int(entry.get("rounds", 4), f"{where}.rounds")
        out.append(
            LinkSpec(
                parent=parent,
                child=child,
                prior=prior,
                source=None if source is None else str(source),
                tss=None if entry.get("tss") is None else str(entry["tss"]),
                window_kb=_number(
                    entry, "window_kb", where, 100.0, 0, 1e5, True, False, "e.g. window_kb: 100"
                ),
                decay_kb=_number(
                    entry,
                    "decay_kb",
                    where,
                    None,
                    0,
                    1e5,
                    True,
                    False,
                    "e.g. decay_kb: 20, or leave it out (window_kb / 2)",
                ),
                sparsity=_number(
                    entry,
                    "sparsity",
                    where,
                    0.9,
                    0.0,
                    1.0,
                    False,
                    True,
                    "the fraction of candidate links to prune, e.g. 0.95",
                ),
                method=method,
                prior_weight=_number(
                    entry,
                    "prior_weight",
                    where,
                    0.5,
                    0.0,
                    1.0,
                    False,
                    False,
                    "e.g. 0.5 (0: magnitude only, 1: prior only)",
                ),
                rounds=int(rounds or 4),
                weight_decay=_number(
                    entry,
                    "weight_decay",
                    where,
                    1.0,
                    0.0,
                    100.0,
                    False,
                    False,
                    "e.g. 1.0 (torch units, switched off at the last pruning round), or 0 for none",
                ),
            )
        )
    return tuple(out)


def _modality(
    name: str, opts: Mapping[str, Any], roles: Mapping[str, str | None] | None = None
) -> ModalitySpec:
    role = roles.get(name) if roles is not None and name in roles else infer_role(name)
    lik = opts.get("likelihood", ROLES.get(role) if role else None)
    if lik is None:
        raise ConfigError(
            f"no likelihood for modality {name!r}: its name implies no assay (rna/gex, atac/"
            "peaks, adt/prot/protein) and var['feature_types'] names none either.",
            field=f"modalities.{name}.likelihood",
            fix=f"set likelihood to one of {list(LIKELIHOODS)} in the graph, or rename the "
            "modality (e.g. 'rna', 'atac', 'prot').",
        )
    lik = _one_of(str(lik).lower(), LIKELIHOODS, "likelihood", f"modalities.{name}.likelihood")
    weight = opts.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
        raise ConfigError(
            f"weight must be a positive number, got {weight!r}.",
            field=f"modalities.{name}.weight",
            fix="e.g. 1.0",
        )
    layer = opts.get("layer")
    return ModalitySpec(name, lik, float(weight), None if layer is None else str(layer))


def default_graph(
    modalities: Mapping[str, Any] | Iterable[str],
    roles: Mapping[str, str | None] | None = None,
) -> DAGSpec:
    """Default graph for a set of modalities, from their assay roles (:func:`infer_roles`).

    The RNA modality is the child; every ATAC and protein modality is a root component and a
    parent of RNA (conditioned on its integrated latent), so that RNA's ``z_hat`` integrates all
    modalities: ATAC -> RNA (CAVACHON's), protein -> RNA (CITE-seq), ATAC + protein -> RNA
    (TEA-seq/DOGMA-seq). Without exactly one RNA modality, or for modalities of unknown role,
    each such modality becomes its own unconnected root component.
    """
    roles = dict(roles) if roles is not None else infer_roles(modalities)
    mods = list(modalities)
    rna = [m for m in mods if roles.get(m) == "rna"]
    comps: list[dict[str, Any]] = []
    mod_block: dict[str, Any] = {}
    for m in mods:
        role = roles.get(m)
        mod_block[m] = {"likelihood": ROLES[role]} if role in ROLES else {}
    if len(rna) == 1:
        parents = [m for m in mods if roles.get(m) in ("atac", "protein")]
        comps.extend({"name": p, "modalities": [p]} for p in parents)
        comps.append({"name": rna[0], "modalities": rna, "conditioned_on_z_hat": parents})
        rest = [m for m in mods if m not in parents and m != rna[0]]
    else:
        rest = mods
    comps.extend({"name": m, "modalities": [m]} for m in rest)
    return parse_graph({"modalities": mod_block, "components": comps}, roles)


def describe_graph(graph: DAGSpec) -> str:
    """One line naming the components, their likelihoods and edges, e.g.
    ``prot (protein) -> rna (zinb)``."""

    def label(c: ComponentSpec) -> str:
        liks = ",".join(graph.modalities[m].likelihood for m in c.modalities)
        mods = "+".join(c.modalities)
        name = c.name if mods == c.name else f"{c.name}[{mods}]"
        return f"{name} ({liks})"

    edges = [f"{label(graph[p])} -> {label(c)}" for c in graph.components for p in c.parents]
    linked = {p for c in graph.components for p in c.parents} | {
        c.name for c in graph.components if c.parents
    }
    alone = [label(c) for c in graph.components if c.name not in linked]
    if len(graph.components) == 1:
        return label(graph.components[0])
    parts = edges + [f"{a} (unconnected)" for a in alone]
    return "; ".join(parts)
