"""`sharewise validate` checks option values: every wrong value is reported at once, each naming
the key, the value given and what is allowed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sharewise.config import apply_overrides, parse_config, read_yaml
from sharewise.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# (override, key, the value as the message shows it, what is allowed)
GUMBEL_CASES = [
    ("scheme_options.execution=bogus", "scheme_options.execution", "'bogus'", "one of ['stacked', 'per_task', 'auto']"),
    ("scheme_options.p_init=1.5", "scheme_options.p_init", "1.5", "a value in (0, 1)"),
    ("scheme_options.n_components=0", "scheme_options.n_components", "0", "a value >= 1"),
    ("scheme_options.budget=0", "scheme_options.budget", "0", "a value in (0, 1]"),
    ("scheme_options.temperature_floor=-1", "scheme_options.temperature_floor", "-1", "a value > 0"),
    ("scheme_options.budget_weight=-0.5", "scheme_options.budget_weight", "-0.5", "a value >= 0"),
    ("scheme_options.task_chunk=0", "scheme_options.task_chunk", "0", "a value >= 1"),
    ("scheme_options.arch_lr_multiplier=0", "scheme_options.arch_lr_multiplier", "0", "a value > 0"),
    ("scheme_options.network=resnet", "scheme_options.network", "'resnet'", "one of ['core', 'mlp'"),
    ("scheme_options.eval_sampling=maybe", "scheme_options.eval_sampling", "'maybe'", "expected bool"),
    ("train.lr=-1", "train.lr", "-1", "a value >= 0"),
    ("train.mode=sideways", "train.mode", "'sideways'", "one of ['joint', 'alternating']"),
]


def _problems(err: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [line[4:] for line in str(err.value).splitlines()[1:]]


def test_every_wrong_value_is_reported_with_key_value_and_what_is_allowed() -> None:
    data = apply_overrides({"scheme": "gumbel_matrix", "tasks": {"builder": "demo"}},
                           [case[0] for case in GUMBEL_CASES])
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    problems = _problems(err)
    assert len(problems) == len(GUMBEL_CASES), problems
    for _, key, value, allowed in GUMBEL_CASES:
        line = next((p for p in problems if p.startswith(key + ":")), None)
        assert line is not None, (key, problems)
        assert allowed in line and re.search(rf"got (\w+ )?{re.escape(value)}$", line), line


@pytest.mark.parametrize(("scheme", "override", "expected"), [
    ("cross_stitch", "scheme_options.alpha_self=1.2", "scheme_options.alpha_self: expected a value in [0, 1], got float 1.2"),
    ("nddr", "scheme_options.alpha_self=-0.1", "scheme_options.alpha_self: expected a value in [0, 1], got float -0.1"),
    ("nddr", "scheme_options.arch_lr_multiplier=0", "scheme_options.arch_lr_multiplier: expected a value > 0, got int 0"),
    ("soft_ordering", "scheme_options.scale_fn=relu",
     "scheme_options.scale_fn: expected one of ['softmax', 'sigmoid'], got str 'relu'"),
    ("shared_bottom", "scheme_options.execution=fast",
     "scheme_options.execution: expected one of ['stacked', 'per_task', 'auto'], got str 'fast'"),
])
def test_each_schemes_options_have_value_rules(scheme: str, override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(apply_overrides({"scheme": scheme}, [override]))
    assert expected in _problems(err)


def test_the_issue_example_reports_a_wrong_choice_and_two_ignored_options() -> None:
    data = apply_overrides(read_yaml(CONFIGS / "gumbel" / "mnist4.yaml"),
                           ["scheme_options.execution=bogus", "model.core.width=999", "scheme_options.n_components=8"])
    with pytest.raises(ConfigError, match="3 problems") as err:
        parse_config(data)
    problems = "\n".join(_problems(err))
    assert "scheme_options.execution: expected one of ['stacked', 'per_task', 'auto'], got str 'bogus'" in problems
    assert "scheme_options.n_components: has no effect with network 'mnist4'" in problems and "got 8" in problems
    assert "model.core.width: has no effect with scheme_options.network='mnist4'" in problems and "got 999" in problems


@pytest.mark.parametrize(("data", "expected"), [
    ({"scheme": "gumbel_matrix", "scheme_options": {"budget_weight": 2.0}},
     "scheme_options.budget_weight: has no effect without scheme_options.budget, got 2.0"),
    ({"scheme": "gumbel_matrix", "scheme_options": {"network_options": {"hidden": 3}}},
     "scheme_options.network_options: network 'core' takes none"),
    ({"scheme": "gumbel_matrix", "scheme_options": {"network": "mlp", "network_options": {"hiden": 3}}},
     "scheme_options.network_options.hiden: unknown key (did you mean 'hidden'?)"),
    ({"scheme": "gumbel_matrix", "scheme_options": {"network": "mlp"}, "model": {"core": {"depth": 2}}},
     "model.core.depth: has no effect with scheme_options.network='mlp'"),
    ({"model": {"core": {"kind": "dense", "kernel_size": 5}}},
     "model.core.kernel_size: has no effect with model.core.kind=dense (it applies to conv cores); remove it, got 5"),
    ({"model": {"encoder": {"kind": "identity", "activation": "tanh"}}},
     "model.encoder.activation: has no effect with model.encoder.kind=identity"),
])
def test_ignored_options_are_errors(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert any(expected in p for p in _problems(err)), _problems(err)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_resolved_config_is_valid_again(path: Path) -> None:
    # config.yaml of a run holds every key at its default; none of them counts as "ignored".
    from sharewise.config import config_to_dict

    cfg = parse_config(read_yaml(path))
    assert parse_config(config_to_dict(cfg)) == cfg


@pytest.mark.parametrize(("scheme", "options", "expected"), [
    ("permuted", {"orders": [[0, 1, 2, 3], [0, 0, 1, 2]]},
     "scheme_options.orders: scheme_options.orders row 1 (task 1) must be a permutation of 0..3"),
    ("branched", {}, "scheme_options.tree: scheme 'branched' needs scheme_options.tree"),
    ("branched", {"tree": "nowhere.json"}, "scheme_options.tree: no tree file at 'nowhere.json'"),
])
def test_structured_options_are_checked_before_any_work(scheme: str, options: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"scheme": scheme, "scheme_options": options})
    assert any(p.startswith(expected) for p in _problems(err)), _problems(err)
