"""User modules in YAML (``_component_``): imported, checked against their signature and probed
before any training; every problem is reported at once, naming its key."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from sharewise.builders import build_model
from sharewise.cli.main import main
from sharewise.config import parse_config
from sharewise.config.components import instantiate, resolve
from sharewise.data.tasksets import build_tasks
from sharewise.errors import ConfigError
from sharewise.sharing import GumbelMatrix, SoftOrdering

USER_MODULE = textwrap.dedent('''
    import torch
    from torch import nn

    class MLPBlock(nn.Module):
        """A user's residual block, width -> width."""

        def __init__(self, width: int, hidden: int = 8) -> None:
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(width, hidden), nn.Linear(hidden, width)

        def forward(self, x):
            return x + self.fc2(self.fc1(x).relu())

    class Encoder(nn.Module):
        def __init__(self, out: int) -> None:
            super().__init__()
            self.out = out
            self.lazy = nn.LazyLinear(out)

        def forward(self, x):
            return self.lazy(x.flatten(1)).relu()
''')


@pytest.fixture
def user_pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "usernet_i13.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "usernet_i13"


def user_config(pkg: str, **changes: Any) -> dict[str, Any]:
    cfg = {
        "name": "byo",
        "scheme": "soft_ordering",
        "tasks": {"builder": "demo", "options": {"names": ["iris", "wine", "friedman1"]}},
        "model": {"encoder": {"kind": "dense"},
                  "core": {"width": 12, "blocks": [{"_component_": f"{pkg}.MLPBlock", "width": 12}] * 3},
                  "head": {"pool": "flatten"}},
        "train": {"steps": 30, "batch_size": 16, "eval_every": 10, "checkpoint_every": 15, "threads": 1},
    }
    cfg.update(changes)
    return cfg


def test_a_config_naming_user_modules_builds_them(user_pkg: str) -> None:
    cfg = parse_config(user_config(user_pkg))
    assert cfg.model.core.depth == 3  # the number of blocks given
    tasks = build_tasks("demo", data_dir=None, seed=0, options={"names": ["iris", "wine", "friedman1"]})
    model = build_model(cfg, tasks)
    assert isinstance(model.scheme, SoftOrdering)
    assert [type(m).__name__ for m in model.scheme.bank.layers] == ["MLPBlock"] * 3
    assert model.scheme.bank.layers[0] is not model.scheme.bank.layers[1]  # one instance per spec


def test_gumbel_components_and_per_task_encoders_from_yaml(user_pkg: str) -> None:
    comp = {"_component_": f"{user_pkg}.MLPBlock", "width": 6}
    data = user_config(user_pkg, scheme="gumbel_matrix", scheme_options={"components": [[comp, comp], [comp, comp, comp]]})
    data["model"] = {"encoder": [{"_component_": f"{user_pkg}.Encoder", "out": 6}] * 3}
    cfg = parse_config(data)
    model = build_model(cfg, build_tasks("demo", data_dir=None, seed=0, options={"names": ["iris", "wine", "friedman1"]}))
    assert isinstance(model.scheme, GumbelMatrix) and model.scheme.network.components_per_layer == [2, 3]
    assert len(model.encoders.per_task) == 3


def test_gumbel_components_alone_take_the_user_module_path(user_pkg: str) -> None:
    comp = {"_component_": f"{user_pkg}.MLPBlock", "width": 12}
    data = user_config(user_pkg, scheme="shared_bottom", scheme_options={"components": [[comp, comp]]})
    data["model"] = {"core": {"width": 12}}  # built-in dense encoders, no user blocks
    model = build_model(parse_config(data), build_tasks("demo", data_dir=None, seed=0,
                                                        options={"names": ["iris", "wine", "friedman1"]}))
    assert [type(m).__name__ for m in model.scheme.network.layers[0].bank.layers] == ["MLPBlock", "MLPBlock"]


def test_every_problem_is_reported_at_once_naming_its_key(user_pkg: str) -> None:
    data = user_config(user_pkg)
    data["model"]["core"]["blocks"] = [
        {"_component_": f"{user_pkg}.MLPBlock", "width": 12, "depth": 2},  # unknown argument
        {"_component_": f"{user_pkg}.NoSuchBlock"},  # missing attribute
        {"_component_": "no_such_package_i13.Block"},  # import error
        {"_component_": f"{user_pkg}.MLPBlock"},  # required argument missing
    ]
    data["model"]["head"] = {"_component_": "torch.nn.Linear", "in_features": 12, "out_feature": 3}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    text = str(info.value)
    assert "(6 problems)" in text
    assert "model.core.blocks[0].depth: MLPBlock takes no argument 'depth'; it takes: width, hidden" in text
    assert f"model.core.blocks[1]._component_: module '{user_pkg}' has no attribute 'NoSuchBlock'" in text
    assert "model.core.blocks[2]._component_: cannot import 'no_such_package_i13.Block'" in text
    assert "model.core.blocks[3]: MLPBlock needs the argument 'width', which is missing" in text
    assert "model.head.out_feature: Linear takes no argument 'out_feature'" in text
    assert "model.head: Linear needs the argument 'out_features', which is missing" in text


def test_depth_that_contradicts_the_blocks_is_an_error(user_pkg: str) -> None:
    data = user_config(user_pkg)
    data["model"]["core"]["depth"] = 5
    with pytest.raises(ConfigError, match="model.core.depth: the core has the 3 blocks of model.core.blocks, but depth=5"):
        parse_config(data)


def test_validate_probes_the_shapes_and_names_the_block(user_pkg: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(user_config(user_pkg)))
    assert main(["validate", str(good)]) == 0
    out = capsys.readouterr().out
    assert ": OK (scheme soft_ordering" in out and "user modules built and probed" in out
    bad = user_config(user_pkg)
    bad["model"]["core"]["blocks"][1] = {"_component_": f"{user_pkg}.MLPBlock", "width": 7}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "core block 1 (MLPBlock) cannot take an input of shape [12]" in err


def test_shipped_resnet_config_validates_and_builds_the_stages() -> None:
    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "configs/branched/mnist_multitask_resnet18.yaml").read_text())
    cfg = parse_config(data)
    blocks = instantiate(cfg.model.core.blocks, "model.core.blocks")
    assert len(blocks) == 4 and sum(p.numel() for p in blocks.parameters()) == 175_608


def test_resolve_rejects_non_paths_and_non_callables() -> None:
    with pytest.raises(ConfigError, match="x: expected a dotted import path such as 'mypkg.blocks.ResBlock', got 'Linear'"):
        resolve("Linear", "x")
    with pytest.raises(ConfigError, match="'torch.pi' is a float, not a class or function"):
        resolve("torch.pi", "x")
    with pytest.raises(ConfigError, match=r"model.encoder: torch.nn.Linear\(in_features=-1, out_features=2\) failed"):
        instantiate({"_component_": "torch.nn.Linear", "in_features": -1, "out_features": 2}, "model.encoder")


BYO_CONFIGS = ["byo/soft_ordering_resnet_blocks.yaml", "byo/soft_ordering_transformer.yaml",
               "byo/gumbel_own_components.yaml", "branched/mnist_multitask_resnet18.yaml"]


@pytest.mark.parametrize("name", BYO_CONFIGS)
def test_example_configs_build_and_train_a_step(name: str, shared_data: Path) -> None:
    """Each README example builds on its real tasks and one training step gives finite gradients."""
    import torch

    from sharewise.config import apply_overrides, read_yaml
    from sharewise.tasks.losses import MultiTaskLoss

    root = Path(__file__).resolve().parents[2] / "configs"
    data = apply_overrides(read_yaml(root / name), ["tasks.options.n_train=40", "tasks.options.n_val=8",
                                                    "tasks.options.n_test=8"])
    cfg = parse_config(data)
    tasks = build_tasks(cfg.tasks.builder, data_dir=str(shared_data), seed=0, options=cfg.tasks.options)
    model = build_model(cfg, tasks)
    x = tasks[0].x_train[:4].unsqueeze(0).expand(len(tasks), *tasks[0].x_train[:4].shape)
    rows = [t.y_train[:4].float().reshape(4, -1) if t.kind == "regression" else t.y_train[:4].float().unsqueeze(1)
            for t in tasks]
    widest = max(r.shape[1] for r in rows)
    y = torch.stack([torch.nn.functional.pad(r, (0, widest - r.shape[1])) for r in rows])
    loss, _ = MultiTaskLoss(tasks)(model(x), y)
    loss.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_builtin_conv_core_as_a_component_preset() -> None:
    """The built-in conv core is the same network when named by import path (generic bank)."""
    import torch

    opts = {"names": ["iris", "wine"]}
    base = {"scheme": "permuted", "tasks": {"builder": "demo", "options": opts}, "seed": 4,
            "model": {"encoder": {"kind": "identity"}, "core": {"kind": "conv", "width": 4, "depth": 2, "pool": False}}}
    tasks = build_tasks("demo", data_dir=None, seed=0, options=opts)
    images = [t for t in tasks]
    for t in images:  # view the tabular inputs as 4-channel 1 x k images
        for split in ("train", "val", "test"):
            x = getattr(t, f"x_{split}")
            setattr(t, f"x_{split}", torch.nn.functional.pad(x, (0, 16 - x.shape[1])).view(-1, 4, 2, 2))
    torch.manual_seed(0)
    builtin = build_model(parse_config(base), images)
    spec = {"_component_": "sharewise.components.conv.ConvPoolLayer", "channels": 4, "pool": False}
    preset = {**base, "model": {"encoder": {"kind": "identity"}, "core": {"blocks": [spec, spec]}}}
    torch.manual_seed(0)
    user = build_model(parse_config(preset), images)
    assert [n for n, _ in builtin.named_parameters()] == [n for n, _ in user.named_parameters()]
    assert all(torch.equal(a, b) for a, b in zip(builtin.parameters(), user.parameters()))
    x = images[0].x_train[:5].unsqueeze(0).expand(2, 5, 4, 2, 2)
    torch.testing.assert_close(builtin(x), user(x))
