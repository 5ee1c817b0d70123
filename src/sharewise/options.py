"""Allowed values of builder options, written into the builder's signature.

A scheme's (or task set's) keyword options are its config schema, so their allowed values are
declared where the options are: ``typing.Literal`` for a choice and ``Annotated[..., Range(...)]``
for a number, e.g.::

    def build_x(core, n_tasks, *, seed=0,
                execution: Literal["auto", "stacked"] = "auto",
                budget: Annotated[float | None, Range(0, 1, low_open=True)] = None) -> X: ...

``sharewise validate`` (:func:`check_options`, called by ``sharewise.config.validate``) reads them and reports
every wrong value before any work, naming the key, the value and what is allowed. Pattern:
torchtune ``config/_validate.py`` (all problems at once); pydantic's ``Annotated`` constraints.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    """Numbers in ``[low, high]`` (``low_open``/``high_open``: exclude the end; None: unbounded)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: Any) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return (f"a value in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"a value {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"a value {'<' if self.high_open else '<='} {self.high:g}"
        return "any value"


POSITIVE = Range(0, low_open=True)  # > 0
NON_NEGATIVE = Range(0)  # >= 0
AT_LEAST_ONE = Range(1)  # counts
PROBABILITY = Range(0, 1)  # [0, 1]
OPEN_PROBABILITY = Range(0, 1, low_open=True, high_open=True)  # (0, 1)


def _strip(hint: Any) -> tuple[Any, list[Range]]:
    """``Annotated[T, Range(...)]`` -> ``(T, [Range(...)])``; other hints unchanged."""
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        return base, [e for e in extras if isinstance(e, Range)]
    return hint, []


def type_ok(value: Any, hint: Any) -> bool:
    hint, _ = _strip(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(type_ok(value, h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(hint))
    if origin in (list, dict, tuple):
        return isinstance(value, list if origin is tuple else origin)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (dict, list, str, bool):
        return isinstance(value, hint)
    return True


def type_name(hint: Any) -> str:
    hint, ranges = _strip(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return f"one of {list(typing.get_args(hint))}"
    if origin in (list, dict, tuple):
        return "list" if origin is tuple else origin.__name__
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def value_problem(value: Any, hint: Any) -> str | None:
    """``"expected ..."`` when ``value`` does not fit ``hint`` (type, ``Literal`` choice or
    ``Range``), else None."""
    if not type_ok(value, hint):
        return f"expected {type_name(hint)}"
    base, ranges = _strip(hint)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    for r in ranges:
        if not r.contains(value):
            return f"expected {r.describe()}"
    return None


def unknown_key(key: str, valid: list[str], where: str) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{where}{key}: unknown key{hint}; valid keys: {', '.join(valid)}"


def check_options(fn: Callable[..., Any], options: dict[str, Any], where: str, problems: list[str],
                  skip: tuple[str, ...] = ()) -> None:
    """Check ``options`` against ``fn``'s keyword parameters: names, annotated types, ``Literal``
    choices and ``Range`` bounds (see :mod:`sharewise.options`)."""
    sig = inspect.signature(fn)
    params = {k: p for k, p in sig.parameters.items() if k not in skip}
    hints = typing.get_type_hints(fn, include_extras=True)
    for key, value in options.items():
        if key not in params:
            problems.append(unknown_key(key, sorted(params) or ["(none)"], where))
        elif key in hints and (expected := value_problem(value, hints[key])) is not None:
            problems.append(f"{where}{key}: {expected}, got {type(value).__name__} {value!r}")
    for key, p in params.items():
        if p.default is inspect.Parameter.empty and key not in options and p.kind is p.KEYWORD_ONLY:
            problems.append(f"{where}{key}: required option is missing")


def valid_options(fn: Callable[..., Any], options: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The subset of ``options`` that :func:`check_options` accepts (known name, allowed value)."""
    params = {k for k in inspect.signature(fn).parameters if k not in skip}
    hints = typing.get_type_hints(fn, include_extras=True)
    return {k: v for k, v in options.items()
            if k in params and (k not in hints or value_problem(v, hints[k]) is None)}


_MISSING = object()


def is_set(data: dict[str, Any], key: str, default: Any = _MISSING) -> bool:
    """Whether the config as written sets the dotted ``key`` (to something other than
    ``default``: a resolved config, e.g. a run's config.yaml, holds every key at its default)."""
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return node != default
