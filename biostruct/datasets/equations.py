"""A safe parser and vectorised evaluator for ODE right-hand sides written as text.

The SIM690/SIM350 systems are published as strings such as
``((1 * fAct(GAL11, 0.52, 1.41)) * 1 - 1 * A1_ALPHA2) / 1``. Nothing here calls ``eval``: a
tokenizer and a recursive-descent parser accept only numbers, gene names, ``+ - * /``, ``^`` or
``**``, unary minus, parentheses and the whitelisted functions in :data:`FUNCTIONS`.

All equations of a system are compiled together into one program: identical subexpressions are
shared, and the operations are grouped by depth and kind, so one evaluation of the whole
right-hand side for a batch of trajectories is a few hundred numpy calls on ``(k, batch)``
arrays, whatever the number of equations.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from biostruct.errors import InputError

__all__ = ["parse_expression", "CompiledSystem", "compile_system", "hill_activation", "FUNCTIONS"]

# name -> number of arguments
FUNCTIONS: dict[str, int] = {"fAct": 3, "exp": 1, "log": 1, "sqrt": 1}

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<op>\*\*|[-+*/^(),]))"
)

Node = tuple  # ("num", float) | ("var", name) | (op, child, ...) | ("call", fname, *args)


def hill_activation(x: np.ndarray, ec50: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The simulator's normalised Hill function ``fAct``.

    ``fAct(x) = B x^n / ((B - 1) + x^n)`` with ``B = (EC50^n - 1) / (2 EC50^n - 1)``, so that
    ``fAct(0) = 0``, ``fAct(EC50) = 0.5`` and ``fAct(1) = 1``. Negative ``x`` (a solver's
    round-off below zero) is treated as 0.
    """
    xn = np.power(np.maximum(x, 0.0), n)
    en = np.power(ec50, n)
    b = (en - 1.0) / (2.0 * en - 1.0)
    return b * xn / ((b - 1.0) + xn)


def _tokenize(text: str, where: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise InputError(
                f"unexpected character {text[pos]!r} at position {pos + 1} in {text[:80]!r}",
                field=where,
                fix="equations may use numbers, gene names, + - * / ^, parentheses and "
                f"the functions {sorted(FUNCTIONS)}.",
            )
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where
        self.toks = _tokenize(text, where)
        self.i = 0

    def error(self, msg: str) -> InputError:
        return InputError(
            f"{msg} in {self.text[:80]!r}",
            field=self.where,
            fix="check the parentheses and operators of the equation.",
        )

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise self.error("unexpected end of expression")
        tok = self.toks[self.i]
        if expected is not None and tok[1] != expected:
            raise self.error(f"expected {expected!r}, found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.expr()
        if self.i != len(self.toks):
            raise self.error(f"unexpected {self.toks[self.i][1]!r}")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            node = ("add" if op == "+" else "sub", node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()[1]
            node = ("mul" if op == "*" else "div", node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return ("neg", self.unary())
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if self.peek() in ("^", "**"):
            self.take()
            return ("pow", base, self.unary())  # right-associative, binds tighter than unary
        return base

    def atom(self) -> Node:
        kind, tok = self.take()
        if kind == "num":
            return ("num", float(tok))
        if kind == "name":
            if self.peek() == "(":
                if tok not in FUNCTIONS:
                    raise InputError(
                        f"function {tok!r} is not allowed in {self.text[:80]!r}",
                        field=self.where,
                        fix=f"use only {sorted(FUNCTIONS)}.",
                    )
                self.take("(")
                args = [self.expr()]
                while self.peek() == ",":
                    self.take()
                    args.append(self.expr())
                self.take(")")
                if len(args) != FUNCTIONS[tok]:
                    raise self.error(f"{tok} takes {FUNCTIONS[tok]} arguments, got {len(args)}")
                return ("call", tok, *args)
            return ("var", tok)
        if tok == "(":
            node = self.expr()
            self.take(")")
            return node
        raise self.error(f"unexpected {tok!r}")


def parse_expression(text: str, where: str = "equation") -> Node:
    """Parse one equation into a nested-tuple expression tree (no ``eval``)."""
    return _Parser(text, where).parse()


def variables(node: Node) -> set[str]:
    """Names used as variables in an expression tree."""
    if node[0] == "var":
        return {node[1]}
    if node[0] == "num":
        return set()
    children = node[2:] if node[0] == "call" else node[1:]
    out: set[str] = set()
    for c in children:
        out |= variables(c)
    return out


_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.power,
}
_UNARY = {"neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt}


@dataclass
class CompiledSystem:
    """A compiled set of right-hand sides ``d state_j / dt = f_j(state, constants)``.

    Attributes
    ----------
    state_names
        Names of the integrated variables, in state order.
    constant_names
        Names of the variables held constant (input genes).
    n_slots
        Size of the value buffer.
    """

    state_names: list[str]
    constant_names: list[str]
    n_slots: int
    _num_slots: np.ndarray
    _num_values: np.ndarray
    _state_slots: np.ndarray
    _const_slots: np.ndarray
    _groups: list[tuple[str, np.ndarray, tuple[np.ndarray, ...], tuple[np.ndarray, ...]]]
    _roots: np.ndarray

    def workspace(self, batch: int) -> np.ndarray:
        """A value buffer for :meth:`rhs` (reuse it across calls of one integration)."""
        v = np.empty((self.n_slots, batch), dtype=np.float64)
        v[self._num_slots] = self._num_values[:, None]
        return v

    def rhs(
        self, state: np.ndarray, constants: np.ndarray, work: np.ndarray | None = None
    ) -> np.ndarray:
        """Evaluate all right-hand sides.

        Parameters
        ----------
        state
            ``(n_states, batch)`` values of the integrated variables.
        constants
            ``(n_constants, batch)`` values of the constant variables.
        work
            Optional buffer from :meth:`workspace` (same batch size); saves an allocation per
            call. Do not share one buffer between threads.

        Returns
        -------
        numpy.ndarray
            ``(n_states, batch)`` time derivatives.
        """
        batch = state.shape[1]
        v = work if work is not None and work.shape == (self.n_slots, batch) else None
        if v is None:
            v = self.workspace(batch)
        v[self._state_slots] = state
        v[self._const_slots] = constants
        with np.errstate(all="ignore"):
            for op, out, args, extra in self._groups:
                if op in _BINARY:
                    v[out] = _BINARY[op](v[args[0]], v[args[1]])
                elif op in _UNARY:
                    v[out] = _UNARY[op](v[args[0]])
                elif op == "hill_const":  # fAct with numeric EC50 and n: B precomputed
                    b, n = extra
                    xn = np.power(np.maximum(v[args[0]], 0.0), n)
                    v[out] = b * xn / ((b - 1.0) + xn)
                else:  # fAct
                    v[out] = hill_activation(v[args[0]], v[args[1]], v[args[2]])
        return v[self._roots]  # fancy indexing copies, so the buffer can be reused


def compile_system(equations: Mapping[str, str], constants: Sequence[str] = ()) -> CompiledSystem:
    """Compile ``{state name: right-hand side}`` into a vectorised :class:`CompiledSystem`.

    Parameters
    ----------
    equations
        Right-hand side text per integrated variable, in state order.
    constants
        Names that may appear in equations and are held constant.

    Raises
    ------
    InputError
        A syntax error, a non-whitelisted function, or an unknown variable name.
    """
    state_names = list(equations)
    const_names = list(constants)
    known = set(state_names) | set(const_names)
    slots: dict[tuple, int] = {}
    level: list[int] = []
    ops: list[tuple[str, tuple[int, ...]]] = []  # per slot; leaves have op "" and no args
    nums: list[tuple[int, float]] = []
    num_of: dict[int, float] = {}  # slot -> value, for number leaves

    def leaf(key: tuple) -> int:
        if key not in slots:
            slots[key] = len(level)
            level.append(0)
            ops.append(("", ()))
        return slots[key]

    for name in state_names:
        leaf(("var", name))
    for name in const_names:
        leaf(("var", name))

    def emit(node: Node, where: str) -> int:
        kind = node[0]
        if kind == "num":
            if ("num", node[1]) not in slots:
                nums.append((leaf(("num", node[1])), node[1]))
                num_of[slots[("num", node[1])]] = node[1]
            return slots[("num", node[1])]
        if kind == "var":
            if node[1] not in known:
                raise InputError(
                    f"unknown variable {node[1]!r}",
                    field=where,
                    fix="every name in an equation must be a node of the system.",
                )
            return slots[("var", node[1])]
        if kind == "call":
            op, children = node[1], node[2:]
        else:
            op, children = kind, node[1:]
        args = tuple(emit(c, where) for c in children)
        # exact identities (x*1, 1*x, x/1, x+0, 0+x, x-0 are bit-identical to x) shrink the
        # published formulas, which are full of "1 * fAct(...)" and "/ 1"
        if op in ("mul", "add") and num_of.get(args[0]) == (1.0 if op == "mul" else 0.0):
            return args[1]
        if op in ("mul", "div") and num_of.get(args[1]) == 1.0:
            return args[0]
        if op in ("add", "sub") and num_of.get(args[1]) == 0.0:
            return args[0]
        if op == "fAct" and args[1] in num_of and args[2] in num_of:
            op = "hill_const"
        key = (op, *args)
        if key not in slots:
            slots[key] = len(level)
            level.append(1 + max(level[a] for a in args))
            ops.append((op, args))
        return slots[key]

    roots = []
    for name in state_names:
        where = f"equation of {name!r}"
        roots.append(emit(parse_expression(equations[name], where), where))

    grouped: dict[tuple[int, str], list[int]] = defaultdict(list)
    for s, (op, _args) in enumerate(ops):
        if op:
            grouped[(level[s], op)].append(s)
    groups = []
    for lvl, op in sorted(grouped):
        members = grouped[(lvl, op)]
        out = np.asarray(members, dtype=np.intp)
        n_args = len(ops[members[0]][1])
        args = tuple(
            np.asarray([ops[s][1][k] for s in members], dtype=np.intp) for k in range(n_args)
        )
        extra: tuple[np.ndarray, ...] = ()
        if op == "hill_const":
            ec50 = np.asarray([num_of[a] for a in args[1]])[:, None]
            n = np.asarray([num_of[a] for a in args[2]])[:, None]
            en = np.power(ec50, n)
            extra = ((en - 1.0) / (2.0 * en - 1.0), n)
            args = args[:1]
        groups.append((op, out, args, extra))
    return CompiledSystem(
        state_names=state_names,
        constant_names=const_names,
        n_slots=len(level),
        _num_slots=np.asarray([s for s, _ in nums], dtype=np.intp),
        _num_values=np.asarray([v for _, v in nums], dtype=np.float64),
        _state_slots=np.asarray([slots[("var", n)] for n in state_names], dtype=np.intp),
        _const_slots=np.asarray([slots[("var", n)] for n in const_names], dtype=np.intp),
        _groups=groups,
        _roots=np.asarray(roots, dtype=np.intp),
    )
