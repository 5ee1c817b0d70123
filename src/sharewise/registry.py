"""Named builders, found by scanning a package: the one registry behind schemes and task sets.

A scheme or task set is one module in its package plus a registered name: the registry imports
every public module of its package (``pkgutil``) the first time a name is asked for, so nothing
else needs editing. Builders that live outside the package are registered by importing their
module first, in one of two documented ways:

- a config's ``imports:`` key (a list of module paths, imported before the config is validated;
  see :func:`import_modules`), or
- an installed distribution's entry point in the registry's group (``sharewise.schemes`` or
  ``sharewise.tasksets``) naming the module, e.g. in its ``pyproject.toml``::

      [project.entry-points."sharewise.schemes"]
      my_scheme = "my_package.my_scheme"

Both registries check for duplicate names and suggest the closest name for an unknown one.
Pattern: timm's ``_registry.py`` (``register_model``) and ``_factory.py`` (unknown names listed).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import sys
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from sharewise.errors import ConfigError

B = TypeVar("B", bound=Callable[..., object])
#: ``check(options, cfg, given) -> problems``: value rules that span several options or the rest
#: of the config (an option ignored under another's value); ``options`` are the given options,
#: ``cfg`` the parsed RunConfig (defaults filled in), ``given`` the config as the user wrote it.
OptionCheck = Callable[[dict[str, Any], Any, dict[str, Any]], list[str]]


def _qualified(fn: Callable[..., object]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


class Registry(Generic[B]):
    """``name -> builder`` for one kind of thing (``what``: "sharing scheme", "task set").

    ``package``: the package whose modules are imported to discover the built-in builders;
    ``group``: the entry-point group that names external modules.
    """

    def __init__(self, what: str, package: str, group: str) -> None:
        self.what, self.package, self.group = what, package, group
        self._builders: dict[str, B] = {}
        self._checks: dict[str, OptionCheck] = {}
        self._discovered = False

    def register(self, name: str, check: OptionCheck | None = None) -> Callable[[B], B]:
        """Decorator registering ``builder`` under ``name`` (and ``check``, run by the config
        validator after the options' own annotated rules).

        Registering a second builder under a taken name is an error naming both; the same
        builder again (its module imported twice) replaces the first.
        """

        def wrap(builder: B) -> B:
            old = self._builders.get(name)
            if old is not None and _qualified(old) != _qualified(builder):
                raise ConfigError(f"{self.what} {name!r} is registered twice, by {_qualified(old)} and by "
                                  f"{_qualified(builder)}; give one of them another name")
            self._builders[name] = builder
            if check is not None:
                self._checks[name] = check
            return builder

        return wrap

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def unknown(self, name: str) -> str:
        """The message for an unknown ``name``: the closest registered name and all of them."""
        valid = self.names()
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return (f"unknown {self.what} {name!r}.{hint} Valid: {', '.join(valid)}. A {self.what} defined "
                f"outside sharewise is found after its module is imported (config key imports: [module])")

    def get(self, name: str) -> B:
        self.discover()
        if name not in self._builders:
            raise ConfigError(self.unknown(name))
        return self._builders[name]

    def check(self, name: str) -> OptionCheck | None:
        """The cross-option check registered with ``name`` (None: only the annotated rules)."""
        self.discover()
        return self._checks.get(name)

    def discover(self) -> None:
        """Import every public module of the package, then every module the entry points name."""
        if self._discovered:
            return
        self._discovered = True
        pkg = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")
        for ep in entry_points(group=self.group):
            try:
                ep.load()
            except Exception as err:  # an installed plugin is broken: say which one
                self._discovered = False
                raise ConfigError(f"the {self.what} entry point {ep.name!r} = {ep.value!r} (group {self.group!r}) "
                                  f"failed to load: {type(err).__name__}: {err}") from None


def import_modules(modules: Iterable[str], where: str = "imports") -> list[str]:
    """Import each module path (registering the schemes and task sets it defines).

    Returns one problem line per module that cannot be imported (``where``: the config key),
    so the config validator reports them with everything else.
    """
    problems = []
    for i, name in enumerate(modules):
        if not isinstance(name, str) or not name:
            problems.append(f"{where}[{i}]: expected a module path such as 'my_package.my_scheme', got {name!r}")
            continue
        if name.split(".")[0] in sys.stdlib_module_names:  # registers nothing; importing can run code
            problems.append(f"{where}[{i}]: {name!r} is a standard-library module, which defines no sharewise "
                            f"scheme or task set; list your own package's modules here")
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            problems.append(f"{where}[{i}]: cannot import module {name!r} ({err}); put its folder on PYTHONPATH "
                            f"or install it")
        except ConfigError as err:
            problems.append(f"{where}[{i}]: module {name!r}: {err}")
        except Exception as err:  # noqa: BLE001 - a user module raised while importing
            problems.append(f"{where}[{i}]: importing module {name!r} failed: {type(err).__name__}: {err}")
    return problems
