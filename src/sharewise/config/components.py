"""User modules named in YAML by import path: ``{_component_: pkg.mod.Name, arg: value, ...}``.

The torchtune / Hydra convention: a mapping with the key ``_component_`` stands for the call
``pkg.mod.Name(arg=value, ...)``; keyword values may themselves be components (built first).
Positions that take one (see ``COMPONENT_POSITIONS``): ``model.encoder`` and ``model.head`` (one
component for every task, or a list with one per task), ``model.core.blocks`` (a list of D
components, or one component that returns the list, e.g. a backbone split into stages), and
``scheme_options.components`` (Gumbel-Matrix: a list of modular layers, each a list of
components).

:func:`check_components` is the cheap half of validation, run by ``parse_config`` before any
work: every path is imported and every keyword is checked against the callable's signature,
and all problems are reported together, each naming its key. Building on a probe input (shapes)
happens when the model is built (``sharewise validate`` does that too).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

from sharewise.errors import ConfigError

COMPONENT_KEY = "_component_"
COMPONENT_POSITIONS = ("model.encoder", "model.head", "model.core.blocks", "scheme_options.components")


def is_component(value: Any) -> bool:
    return isinstance(value, dict) and COMPONENT_KEY in value


def has_component(value: Any) -> bool:
    """True if ``value`` is a component or a list / mapping holding one at any depth."""
    if is_component(value):
        return True
    if isinstance(value, dict):
        return any(has_component(v) for v in value.values())
    return isinstance(value, list) and any(has_component(v) for v in value)


def resolve(path: Any, where: str) -> Callable[..., Any]:
    """``"pkg.mod.Name"`` (or ``"pkg.mod.Outer.Name"``) -> the object, or a ConfigError naming ``where``."""
    if not isinstance(path, str) or "." not in path.strip(". "):
        raise ConfigError(f"{where}: expected a dotted import path such as 'mypkg.blocks.ResBlock', got {path!r}")
    parts = path.split(".")
    if parts[0] in _STDLIB:  # refused before importing: an import can itself run code
        raise ConfigError(f"{where}: {path!r} is in Python's standard library; a component must be a "
                          f"torch.nn.Module class or a function of your own package (configs and run "
                          f"directories are data, so they may not call arbitrary functions)")
    module, error = None, None
    for cut in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError as err:
            if error is None:
                error = err
            continue
        obj: Any = module
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            raise ConfigError(f"{where}: module {'.'.join(parts[:cut])!r} has no attribute "
                              f"{'.'.join(parts[cut:])!r} (from {COMPONENT_KEY}: {path})") from None
        if not callable(obj):
            raise ConfigError(f"{where}: {path!r} is a {type(obj).__name__}, not a class or function")
        _check_safe(obj, path, where)
        return obj
    raise ConfigError(f"{where}: cannot import {path!r}: {error}. Check the spelling, and that the package is "
                      f"installed or on PYTHONPATH") from None


_STDLIB = frozenset(sys.stdlib_module_names) | {"builtins"}
# Libraries whose functions read, write or execute files (torch.load, torch.hub.load, numpy.save,
# pandas.read_pickle, ...): a config may use their nn.Module classes, never their functions.
_NO_FUNCTIONS_FROM = ("torch", "numpy", "pandas", "yaml", "scipy", "matplotlib", "PIL", "pickle", "dill", "joblib")


def _check_safe(obj: Any, path: str, where: str) -> None:
    """A component is a torch.nn.Module class, or a plain Python function outside the libraries
    above: never a builtin, a class of another kind, or a function that loads or runs files, so a
    hostile config or run directory cannot use ``_component_`` to run code."""
    import torch

    if inspect.isclass(obj):
        if issubclass(obj, torch.nn.Module):
            return
        problem = f"a class that is not a torch.nn.Module ({obj.__module__}.{obj.__qualname__})"
    elif inspect.isfunction(obj) and not (obj.__module__ or "").split(".")[0] in _NO_FUNCTIONS_FROM:
        return
    else:
        problem = f"a {type(obj).__name__} from {getattr(obj, '__module__', None) or 'a library'}"
    raise ConfigError(f"{where}: {path!r} is {problem}; a component must be a torch.nn.Module class or a "
                      f"function of your own package (configs and run directories are data, so they may "
                      f"not call arbitrary functions)")


def _kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != COMPONENT_KEY}


def _check_signature(fn: Callable[..., Any], kwargs: dict[str, Any], where: str, problems: list[str]) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins without a signature: the call itself will tell
    params = sig.parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = [k for k, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in kwargs:
        if key not in named and not takes_any:
            problems.append(f"{where}.{key}: {fn.__qualname__} takes no argument {key!r}; it takes: "
                            f"{', '.join(named) or 'no arguments'}")
    for key, p in params.items():
        required = p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        if required and key not in kwargs:
            problems.append(f"{where}: {fn.__qualname__} needs the argument {key!r}, which is missing")


def check_components(value: Any, where: str, problems: list[str]) -> None:
    """Import every component under ``value`` and check its keyword arguments; collect problems."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_components(item, f"{where}[{i}]", problems)
        return
    if not is_component(value):
        if isinstance(value, dict):
            for k, v in value.items():
                check_components(v, f"{where}.{k}", problems)
        return
    try:
        fn = resolve(value[COMPONENT_KEY], f"{where}.{COMPONENT_KEY}")
    except ConfigError as err:
        problems.append(str(err))
        return
    _check_signature(fn, _kwargs(value), where, problems)
    for key, arg in _kwargs(value).items():
        check_components(arg, f"{where}.{key}", problems)


def instantiate(value: Any, where: str) -> Any:
    """Build every component under ``value`` (lists stay lists; plain values pass through)."""
    if isinstance(value, list):
        return [instantiate(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not is_component(value):
        return value
    fn = resolve(value[COMPONENT_KEY], f"{where}.{COMPONENT_KEY}")
    problems: list[str] = []
    _check_signature(fn, _kwargs(value), where, problems)
    if problems:
        raise ConfigError("; ".join(problems))
    kwargs = {k: instantiate(v, f"{where}.{k}") for k, v in _kwargs(value).items()}
    try:
        return fn(**kwargs)
    except Exception as err:  # the user's constructor: report it against the config key
        raise ConfigError(f"{where}: {value[COMPONENT_KEY]}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) "
                          f"failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
