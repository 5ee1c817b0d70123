"""The shared registry: package discovery, duplicate names, did-you-mean, outside modules."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from sharewise.config import parse_config
from sharewise.data.tasksets import available_tasksets, taskset_builder
from sharewise.errors import ConfigError
from sharewise.registry import Registry, import_modules
from sharewise.sharing import available_schemes, create_scheme
from sharewise.sharing._registry import SCHEMES, scheme_builder



def test_every_module_of_the_package_is_scanned() -> None:
    # One registered name per public module at least; no hand-kept list to forget.
    assert {"soft_ordering", "permuted", "gumbel_matrix", "cross_stitch", "nddr", "branched"} <= set(available_schemes())
    assert {"demo", "uci10", "mnist_pairs", "csv_folder"} <= set(available_tasksets())


def test_both_registries_suggest_the_closest_name() -> None:
    with pytest.raises(ConfigError, match="unknown task set 'dmeo'. Did you mean 'demo'\\?"):
        taskset_builder("dmeo")
    with pytest.raises(ConfigError, match="unknown sharing scheme 'permutted'. Did you mean 'permuted'\\?"):
        scheme_builder("permutted")


def test_a_name_registered_twice_is_an_error_naming_both() -> None:
    reg: Registry = Registry("thing", "sharewise.sharing", "sharewise.test-none")

    def first() -> None: ...

    def second() -> None: ...

    reg.register("x")(first)
    reg.register("x")(first)  # the same builder again (module imported twice) replaces it
    with pytest.raises(ConfigError, match="thing 'x' is registered twice, by .*first and by .*second"):
        reg.register("x")(second)
    with pytest.raises(ConfigError, match="registered twice"):
        SCHEMES.register("soft_ordering")(second)


def test_imports_key_registers_schemes_from_outside_the_package(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "outside_scheme_mod.py").write_text(textwrap.dedent('''
        from sharewise.sharing import register_scheme
        from sharewise.sharing.hard import Parallel, build_parallel

        @register_scheme("outside_parallel")
        def build_outside(core, n_tasks, *, seed=0) -> Parallel:
            return build_parallel(core, n_tasks, seed=seed)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="unknown sharing scheme 'outside_parallel'.*imports"):
        parse_config({"scheme": "outside_parallel"})
    cfg = parse_config({"scheme": "outside_parallel", "imports": ["outside_scheme_mod"]})
    assert cfg.imports == ["outside_scheme_mod"] and "outside_parallel" in available_schemes()
    sys.modules.pop("outside_scheme_mod", None)
    SCHEMES._builders.pop("outside_parallel", None)


def test_an_unimportable_module_is_reported_with_the_other_problems() -> None:
    assert "imports[0]: cannot import module 'no_such_module_xyz'" in import_modules(["no_such_module_xyz"])[0]
    with pytest.raises(ConfigError, match=r"(?s)2 problems.*imports\[0\]: cannot import.*train.lr"):
        parse_config({"imports": ["no_such_module_xyz"], "train": {"lr": "fast"}})


def test_n_components_is_set_in_one_place_per_network() -> None:
    from sharewise.sharing import CoreSpec
    from sharewise.components.layer_bank import DenseLayerBank

    core = CoreSpec(lambda n: DenseLayerBank(n, width=6, activation="relu"), 1, (6,))
    assert create_scheme("gumbel_matrix", core, 2).network.components_per_layer == [4]
    with pytest.raises(ConfigError, match="n_components=8 sets the components of network 'core' only.*network_options"):
        create_scheme("gumbel_matrix", core, 2, options={"network": "mlp", "n_components": 8})


class _EntryPoint:
    def __init__(self, name: str, value: str, load: object) -> None:
        self.name, self.value, self._load = name, value, load

    def load(self) -> object:
        return self._load()  # type: ignore[operator]


def test_entry_points_register_outside_builders_and_a_broken_one_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import sharewise.registry as registry_module

    reg: Registry = Registry("thing", "sharewise.sharing", "sharewise.things")

    def load_plugin() -> None:
        reg.register("from_plugin")(lambda: None)

    monkeypatch.setattr(registry_module, "entry_points",
                        lambda group: [_EntryPoint("good", "pkg.good", load_plugin)] if group == "sharewise.things" else [])
    assert "from_plugin" in reg.names()

    def broken() -> None:
        raise ImportError("No module named 'pkg.missing'")

    bad: Registry = Registry("thing", "sharewise.sharing", "sharewise.things")
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [_EntryPoint("bad", "pkg.missing", broken)])
    with pytest.raises(ConfigError, match="entry point 'bad' = 'pkg.missing' .*failed to load: ImportError"):
        bad.names()
