"""One task cut out as a plain module equals the multi-task model's output for that task.

For every registered scheme (dense core, tasks of different input and output widths) and for
conv cores, the exported module on a task's own inputs equals ``model(x[None], [t])[0]``; it
holds only what the task uses (single-task copies, the branched path, Gumbel-Matrix's active
components); the TorchScript file of a real run loads and runs in a Python without sharewise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
from torch import nn

from sharewise.assemble import finish_model
from sharewise.components.fused_banks import ConvBank
from sharewise.components.layer_bank import DenseLayerBank, ModuleLayerBank
from sharewise.components.conv import ConvPoolLayer
from sharewise.components.task_modules import ChannelPad, StackedDense
from sharewise.errors import ExportError
from sharewise.export import parameter_count, trace
from sharewise.sharing import CoreSpec, available_schemes

IN_DIMS, OUTS, WIDTH, DEPTH = [5, 7, 4], [3, 2, 4], 6, 3
OPTIONS = {"branched": {"tree": [[[0, 1, 2]], [[0, 1], [2]], [[0], [1], [2]]]},
           "soft_ordering": {"identity": True}}


def _randomize(model: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.7)
        for name, b in model.named_buffers():
            if b.is_floating_point() and "running_var" in name:
                b.copy_(torch.rand(b.shape, generator=gen) + 0.5)
            elif b.is_floating_point() and "running_mean" in name:
                b.copy_(torch.randn(b.shape, generator=gen) * 0.3)


def _dense_model(scheme: str, options: dict | None = None):
    core = CoreSpec(make_bank=lambda n: DenseLayerBank(n, WIDTH), depth=DEPTH, feature_shape=(WIDTH,))
    model = finish_model(scheme, StackedDense(IN_DIMS, WIDTH, "relu"), core, OUTS, options=options, seed=1)
    _randomize(model)
    return model.eval()


def _check_equal(model, in_dims_or_shape, outs, batch: int = 9) -> None:
    gen = torch.Generator().manual_seed(5)
    for t, n_out in enumerate(outs):
        shape = in_dims_or_shape[t] if isinstance(in_dims_or_shape[t], tuple) else (in_dims_or_shape[t],)
        x = torch.randn(batch, *shape, generator=gen)
        padded = x
        if not isinstance(in_dims_or_shape[t], tuple):
            padded = nn.functional.pad(x, (0, max(in_dims_or_shape) - x.shape[1]))  # the evaluation layout
        with torch.no_grad():
            want = model(padded.unsqueeze(0), [t])[0, :, :n_out]
            plain = model.export_task(t, n_out)
            got = plain(x)
            traced = trace(plain, x[:2])(x)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(traced, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", available_schemes())
def test_every_scheme_exports_each_task_exactly(name: str) -> None:
    model = _dense_model(name, OPTIONS.get(name))
    _check_equal(model, IN_DIMS, OUTS)


def test_exported_modules_hold_only_the_task_s_parameters() -> None:
    single = _dense_model("single_task")
    core_params = sum(p.numel() for p in single.scheme.parameters())
    enc = single.encoders.export_task(0)
    plain = single.export_task(0, OUTS[0])
    scheme_part = sum(p.numel() for p in plain[1].parameters())
    assert scheme_part == core_params // 3  # one of three copies
    assert parameter_count(enc) == IN_DIMS[0] * WIDTH + WIDTH  # its own rows, unpadded

    branched = _dense_model("branched", OPTIONS["branched"])
    per_block = WIDTH * WIDTH + WIDTH
    assert sum(p.numel() for p in branched.export_task(2, OUTS[2])[1].parameters()) == DEPTH * per_block
    assert sum(p.numel() for p in branched.scheme.parameters()) == 6 * per_block  # 1 + 2 + 3 groups


def test_gumbel_matrix_drops_inactive_components() -> None:
    model = _dense_model("gumbel_matrix", {"n_components": 4})
    with torch.no_grad():  # task 0: components {0, 2} in layer 0, none in layer 1, all in layer 2
        for l, active in enumerate([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]]):
            for c, on in enumerate(active):
                model.scheme.logits[l][0, c] = torch.tensor([3.0, -3.0] if on else [-3.0, 3.0])
    plain = model.export_task(0, OUTS[0])
    kept = [len(m.components) if hasattr(m, "components") else 0 for m in plain[1] if not isinstance(m, nn.Identity)]
    assert kept == [2, 0, 4]
    _check_equal(model, IN_DIMS, OUTS)


def test_soft_ordering_folds_its_scales_into_dense_relu_layers() -> None:
    model = _dense_model("soft_ordering")
    depth0 = model.export_task(1, OUTS[1])[1][0]
    assert type(depth0).__name__ == "FoldedDenseMix" and not depth0.has_identity
    names = {n for n, _ in depth0.named_parameters()} | {n for n, _ in depth0.named_buffers()}
    assert "scales" not in names


@pytest.mark.parametrize("name", ["soft_ordering", "permuted", "branched", "cross_stitch", "nddr", "single_task"])
def test_conv_core_schemes_export_exactly(name: str) -> None:
    core = CoreSpec(make_bank=lambda n: ModuleLayerBank([ConvPoolLayer(4, 3, False) for _ in range(n)]), depth=3,
                    feature_shape=(4, 6, 6))
    model = finish_model(name, ChannelPad(4), core, [3, 2, 4], options=OPTIONS.get(name), seed=0)
    _randomize(model)
    _check_equal(model.eval(), [(1, 6, 6)] * 3, [3, 2, 4], batch=5)


def test_fused_conv_components_export_exactly() -> None:
    bank = ConvBank(3, 2, 4, 3, padding=1)
    _randomize(bank)
    x = torch.randn(2, 2, 5, 5)
    for j in range(3):
        torch.testing.assert_close(bank.export_layer(j)(x), bank.forward_one(j, x), rtol=1e-5, atol=1e-6)


def test_eval_sampling_gumbel_matrix_cannot_be_exported() -> None:
    model = _dense_model("gumbel_matrix", {"eval_sampling": True})
    with pytest.raises(ExportError, match="eval_sampling=true"):
        model.export_task(0)


def _tiny_run(tmp_path: Path, scheme: str) -> Path:
    import yaml

    from sharewise.cli.main import main

    cfg = {"name": "t", "tasks": {"builder": "demo", "options": {"names": ["iris", "wine", "friedman1"]}},
           "model": {"core": {"width": 8, "depth": 2}}}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / scheme
    assert main(["run", str(path), "--scheme", scheme, "--out", str(out), "--steps", "20",
                 "train.eval_every=10", "train.batch_size=16"]) == 0
    return out


@pytest.mark.slow
def test_export_command_writes_torchscript_that_runs_without_sharewise(tmp_path: Path) -> None:
    from sharewise.cli.main import main

    run = _tiny_run(tmp_path, "gumbel_matrix")
    assert main(["export", str(run), "--task", "wine"]) == 0
    dest = run / "export" / "wine"
    info = json.loads((dest / "export.json").read_text())
    assert info["test_check"]["max_abs_diff"] <= 1e-4 and info["test_check"]["samples"] > 0
    assert 0 < info["exported"]["parameters"] < info["multi_task"]["parameters"]
    assert 0 < info["exported"]["multiply_adds_per_sample"] <= info["multi_task"]["multiply_adds_per_sample_all_tasks"]
    from sharewise.export import load_run, reference_outputs

    _, tasks, model = load_run(run)
    x = tasks[1].split("test")[0]
    want = reference_outputs(model, tasks, 1)
    torch.save(x, tmp_path / "x.pt")
    # -I -S: no PYTHONPATH, no site processing (so no editable-install hook); only the directory
    # holding torch and its dependencies is put on the path by hand.
    code = ("import sys, importlib.util; sys.path[:] = [sys.argv[1]] + [p for p in sys.path if 'lib/python' in p "
            "and 'site-packages' not in p]; assert importlib.util.find_spec('sharewise') is None, 'sharewise importable'; "
            "import torch; m = torch.jit.load(sys.argv[2]); x = torch.load(sys.argv[3], weights_only=True); "
            "torch.save(m(x), sys.argv[4])")
    purelib = sysconfig.get_paths()["purelib"]
    subprocess.run([sys.executable, "-I", "-S", "-c", code, purelib, str(dest / "model.torchscript.pt"),
                    str(tmp_path / "x.pt"), str(tmp_path / "y.pt")], check=True, cwd=tmp_path)
    got = torch.load(tmp_path / "y.pt", weights_only=True)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_export_command_rejects_an_unknown_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sharewise.cli.main import main

    run = _tiny_run(tmp_path, "parallel")
    assert main(["export", str(run), "--task", "nope"]) == 2
    assert "'nope' is not a task of this run" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing"), "--task", "wine"]) == 2
