"""Config validation: every problem reported at once, each naming key, expectation and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharewise.config import apply_overrides, parse_config, read_yaml
from sharewise.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_validates_and_starts_with_its_command(path: Path) -> None:
    cfg = parse_config(read_yaml(path))
    assert cfg.train.steps >= 1
    assert path.read_text().startswith("# sharewise "), "each config starts with the command that runs it"


def test_defaults_are_filled_in() -> None:
    cfg = parse_config({})
    assert cfg.scheme == "soft_ordering" and cfg.model.core.depth == 4 and cfg.train.optimizer == "adam"


def test_all_problems_reported_at_once() -> None:
    bad = {"shceme": "parallel", "train": {"lr": "fast", "steps": -3}, "model": {"core": {"kind": "lstm"}}}
    with pytest.raises(ConfigError) as info:
        parse_config(bad)
    msg = str(info.value)
    assert "4 problems" in msg
    assert "shceme: unknown key (did you mean 'scheme'?)" in msg
    assert "train.lr: expected float, got str 'fast'" in msg
    assert "train.steps: expected a value >= 1, got -3" in msg
    assert "model.core.kind: expected one of ['dense', 'conv'], got 'lstm'" in msg


def test_unknown_scheme_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="unknown sharing scheme 'soft_order'.*soft_ordering.*parallel|unknown sharing scheme 'soft_order'"):
        parse_config({"scheme": "soft_order"})
    with pytest.raises(ConfigError) as info:
        parse_config({"scheme": "soft_order"})
    for name in ("parallel", "permuted", "single_task", "soft_ordering", "soft_ordering_uniform"):
        assert name in str(info.value)


def test_scheme_and_taskset_options_checked_against_builder_signatures() -> None:
    with pytest.raises(ConfigError, match=r"scheme_options.idnetity: unknown key \(did you mean 'identity'\?\)"):
        parse_config({"scheme": "soft_ordering", "scheme_options": {"idnetity": True}})
    with pytest.raises(ConfigError, match="scheme_options.identity: expected bool, got str 'yes'"):
        parse_config({"scheme": "soft_ordering", "scheme_options": {"identity": "yes"}})
    with pytest.raises(ConfigError, match="tasks.options.n_sampels: unknown key"):
        parse_config({"tasks": {"builder": "random_patterns", "options": {"n_sampels": 3}}})


def test_dropout_must_be_a_probability() -> None:
    with pytest.raises(ConfigError, match=r"model.core.dropout: expected a drop probability in \[0, 1\), got 1.5"):
        parse_config({"model": {"core": {"dropout": 1.5}}})


def test_overrides_parse_yaml_values_and_nest() -> None:
    data = apply_overrides({"train": {"lr": 0.1}}, ["train.lr=0.01", "scheme_options.identity=true", "name=x"])
    assert data == {"train": {"lr": 0.01}, "scheme_options": {"identity": True}, "name": "x"}
    with pytest.raises(ConfigError, match="override 'train.lr' is not of the form key=value"):
        apply_overrides({}, ["train.lr"])


def test_unreadable_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_yaml(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        read_yaml(broken)


def test_demo_command_config_equals_the_shipped_demo_yaml() -> None:
    from sharewise.cli.commands import demo_config

    shipped = read_yaml(CONFIGS / "demo" / "demo.yaml")
    assert parse_config(demo_config(shipped["train"]["steps"])) == parse_config(shipped)
