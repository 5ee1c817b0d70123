"""Every scheme family over the user's own modules (issue 13): ResNet BasicBlocks at a small width,
``nn.TransformerEncoderLayer`` on token sequences, and MLP blocks defined here. Each model trains a
few Adam steps on one fixed small batch and its loss must fall; the generic path must equal the
paper's equations written as loops; errors must name the user's module, its position and shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sharewise import MultiTaskModel
from sharewise.assemble import assemble_model
from sharewise.components.resnet import BasicBlock
from sharewise.errors import ConfigError, ShapeError

N_OUT = [3, 2]  # two classification tasks of different widths
B = 6


class MLPBlock(nn.Module):
    """The user's own block: a residual two-layer perceptron (width -> width)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, 2 * width), nn.Linear(2 * width, width)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fc2(self.fc1(x).relu())


class MeanTokens(nn.Module):
    def forward(self, x: Tensor) -> Tensor:  # [N, L, d] -> [N, d]
        return x.mean(1)


def _layer(d: int = 8) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(d, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True)


# Each kind: (input shapes per task, encoders, blocks, components, heads), fresh modules per call.
def resnet_kind() -> dict[str, Any]:
    return {"input_shape": [3, 8, 8],
            "encoders": nn.Conv2d(3, 4, 3, padding=1),  # one encoder shared by both tasks
            "blocks": [BasicBlock(4) for _ in range(3)],
            "components": [[BasicBlock(4), BasicBlock(4)], [BasicBlock(4), nn.Identity()]],
            "heads": [nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, n)) for n in N_OUT]}


def transformer_kind() -> dict[str, Any]:
    return {"input_shape": [[5, 6], [5, 6]],
            "encoders": [nn.Linear(6, 8), nn.Linear(6, 8)],  # per-task token embeddings
            "blocks": [_layer() for _ in range(3)],
            "components": [[_layer(), _layer()], [_layer(), _layer()]],
            "heads": nn.Sequential(MeanTokens(), nn.Linear(8, max(N_OUT)))}  # one shared head


def mlp_kind() -> dict[str, Any]:
    return {"input_shape": [[7], [9]],  # tasks of different input widths
            "encoders": [nn.Linear(7, 10), nn.Linear(9, 10)],
            "blocks": [MLPBlock(10) for _ in range(3)],
            "components": [[MLPBlock(10), MLPBlock(10)], [MLPBlock(10), MLPBlock(10)]],
            "heads": None}  # the built-in stacked linear heads


KINDS: dict[str, Callable[[], dict[str, Any]]] = {"resnet": resnet_kind, "transformer": transformer_kind,
                                                  "mlp": mlp_kind}
TREE = [[[0, 1]], [[0, 1]], [[0], [1]]]
SCHEMES: dict[str, dict[str, Any]] = {
    "soft_ordering": {"identity": True},
    "soft_ordering_uniform": {},
    "permuted": {},
    "parallel": {},
    "single_task": {},
    "shared_encoder": {},
    "branched": {"tree": TREE},
    "cross_stitch": {},
    "nddr": {},
    "gumbel_matrix": {"components": True, "p_init": 0.9},  # mostly-active samples: a fair loss probe
    "shared_bottom": {"components": True},
    "no_sharing": {"components": True},
}


def build(scheme: str, kind: str, seed: int = 0) -> MultiTaskModel:
    torch.manual_seed(seed)
    parts = KINDS[kind]()
    options = dict(SCHEMES[scheme])
    blocks = parts["blocks"]
    if options.get("components"):
        options["components"], blocks = parts["components"], None
    return assemble_model(scheme, n_outputs=N_OUT, input_shape=parts["input_shape"], blocks=blocks,
                          encoders=parts["encoders"], heads=parts["heads"], options=options, seed=seed)


def batch(kind: str) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(1)
    shape = {"resnet": [3, 8, 8], "transformer": [5, 6], "mlp": [9]}[kind]
    x = torch.randn(len(N_OUT), B, *shape, generator=gen)
    if kind == "mlp":
        x[0, :, 7:] = 0.0  # task 0 has 7 features; stacked inputs are padded to the widest task
    y = torch.stack([torch.randint(0, n, (B,), generator=gen) for n in N_OUT])
    return x, y


def loss_of(model: MultiTaskModel, x: Tensor, y: Tensor, kind: str) -> Tensor:
    out = model(x)  # [T, B, O_max]
    losses = []
    for t, n in enumerate(N_OUT):
        losses.append(F.cross_entropy(out[t, :, :n], y[t]))
    return torch.stack(losses).sum()


def _measure(model: MultiTaskModel, x: Tensor, y: Tensor, kind: str) -> float:
    """The training-mode loss with the same random draws every time (dropout, Gumbel noise)."""
    gens = [m.generator for m in model.modules() if isinstance(getattr(m, "generator", None), torch.Generator)]
    states = [g.get_state() for g in gens]
    torch.manual_seed(123)
    with torch.no_grad():
        value = float(loss_of(model, x, y, kind))
    for g, s in zip(gens, states):
        g.set_state(s)
    return value


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_loss_falls_on_a_fixed_batch(scheme: str, kind: str) -> None:
    model = build(scheme, kind)
    x, y = batch(kind)
    model.train()
    before = _measure(model, x, y, kind)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(12):
        model.scheme.on_update(step)
        loss = loss_of(model, x, y, kind)
        reg = model.scheme.regularizer()
        (loss if reg is None else loss + reg).backward()
        opt.step()
        opt.zero_grad()
    after = _measure(model, x, y, kind)
    assert after < 0.9 * before, f"{scheme} on {kind} blocks: loss {before:.4f} -> {after:.4f}"


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_parameter_gets_a_gradient_under_soft_ordering(kind: str) -> None:
    model = build("soft_ordering", kind)
    x, y = batch(kind)
    loss_of(model, x, y, kind).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert not missing, missing
    assert model.architecture_parameters() == [model.scheme.logits]


def test_soft_ordering_of_user_blocks_equals_eq7_loop() -> None:
    """Eq. 7, one task and one (layer, depth) at a time, equals the stacked generic path."""
    torch.manual_seed(0)
    blocks = [MLPBlock(5) for _ in range(3)]
    model = assemble_model("soft_ordering", n_outputs=[2, 2], input_shape=[5], blocks=blocks, options={"identity": True})
    with torch.no_grad():
        model.scheme.logits.copy_(torch.randn(model.scheme.logits.shape))
    x = torch.randn(2, 4, 5)
    got = model.scheme(x)
    s = torch.softmax(model.scheme.logits, dim=1)  # [T, J, D]
    for t in range(2):
        h = x[t]
        for k in range(3):
            outs = [blocks[j](h) for j in range(3)] + [h]
            h = sum(s[t, j, k] * outs[j] for j in range(4))
        torch.testing.assert_close(got[t], h)
    assert model.scheme.bank.layers[1] is blocks[1]  # the user's modules themselves are trained


def test_parallel_and_permuted_of_user_blocks_equal_loops() -> None:
    torch.manual_seed(0)
    blocks = [MLPBlock(5) for _ in range(3)]
    x = torch.randn(2, 4, 5)
    par = assemble_model("parallel", n_outputs=[2, 2], input_shape=[5], blocks=blocks)
    torch.testing.assert_close(par.scheme(x), blocks[2](blocks[1](blocks[0](x))))
    perm = assemble_model("permuted", n_outputs=[2, 2], input_shape=[5], blocks=blocks, seed=3)
    for t, order in enumerate(perm.scheme.permutations.tolist()):
        h = x[t]
        for j in order:
            h = blocks[j](h)
        torch.testing.assert_close(perm.scheme(x)[t], h)


def test_frozen_uniform_scales_stay_uniform() -> None:
    model = build("soft_ordering_uniform", "mlp")
    assert model.architecture_parameters() == []
    assert torch.allclose(model.scheme.scales(), torch.full_like(model.scheme.scales(), 1 / 3))


def test_single_task_columns_are_copies_of_the_blocks() -> None:
    torch.manual_seed(0)
    blocks = [MLPBlock(4), MLPBlock(4)]
    model = assemble_model("single_task", n_outputs=[2, 2, 2], input_shape=[4], blocks=blocks)
    layers = model.scheme.bank.layers
    assert len(layers) == 6 and layers[0] is blocks[0] and layers[1] is blocks[1]
    for t in (1, 2):  # task t owns layers t*D + d: deep copies with the same starting weights
        for d in (0, 1):
            copy = layers[t * 2 + d]
            assert copy is not blocks[d]
            assert all(torch.equal(a, b) for a, b in zip(copy.parameters(), blocks[d].parameters()))


def test_gumbel_matrix_options_over_user_components() -> None:
    comps = [[MLPBlock(4), MLPBlock(4), nn.Identity()], [MLPBlock(4), MLPBlock(4)]]
    model = assemble_model("gumbel_matrix", n_outputs=[2, 2], input_shape=[4],
                           options={"components": comps, "budget": 0.5, "p_init": 0.9, "temperature_initial": 10.0,
                                    "execution": "per_task", "arch_lr_multiplier": 1.0}, seed=0)
    core = model.scheme
    assert core.network.components_per_layer == [3, 2] and core.budget == 0.5
    assert core.arch_lr_multiplier == 1.0 and core.execution == "per_task"
    assert [p.shape for p in core.architecture_parameters()] == [torch.Size([2, 3, 2]), torch.Size([2, 2, 2])]
    core.train()
    core(torch.randn(2, 3, 4))
    reg = core.regularizer()
    assert reg is not None and float(reg.detach()) > 0  # p_init 0.9 > budget 0.5
    assert core.learned_structure()["components"][0] == ["l0c0:MLPBlock", "l0c1:MLPBlock", "l0c2:Identity"]


# -- errors name the user's module, its position and the shapes ------------------------------

def test_blocks_that_cannot_be_soft_ordered_are_named() -> None:
    blocks = [BasicBlock(4), BasicBlock(4, 8), BasicBlock(4)]
    with pytest.raises(ShapeError, match=r"core block 1 \(BasicBlock\): \[8, 8, 8\]"):
        assemble_model("soft_ordering", n_outputs=[2], input_shape=[4, 8, 8], blocks=blocks)


def test_a_block_that_cannot_take_the_features_is_named() -> None:
    blocks = [MLPBlock(6), MLPBlock(5)]
    with pytest.raises(ShapeError, match=r"core block 1 \(MLPBlock\) cannot take an input of shape \[6\]"):
        assemble_model("permuted", n_outputs=[2], input_shape=[6], blocks=blocks)


def test_head_too_narrow_and_encoder_mismatch_are_named() -> None:
    with pytest.raises(ShapeError, match=r"head of task 1 \(Linear\) must map \[N, 4\] to \[N, 5\].*gives \[2, 3\]"):
        assemble_model("parallel", n_outputs=[2, 5], input_shape=[4], blocks=[MLPBlock(4)],
                       heads=[nn.Linear(4, 2), nn.Linear(4, 3)])
    with pytest.raises(ShapeError, match=r"task 0: \[4\], task 1: \[5\]"):
        assemble_model("parallel", n_outputs=[2, 2], input_shape=[3], blocks=[MLPBlock(4)],
                       encoders=[nn.Linear(3, 4), nn.Linear(3, 5)])
    with pytest.raises(ConfigError, match="one module per task \\(2\\) or one shared module, but got a list of 3"):
        assemble_model("parallel", n_outputs=[2, 2], input_shape=[3], blocks=[MLPBlock(3)],
                       encoders=[nn.Identity()] * 3)


def test_missing_blocks_and_a_single_module_are_explained() -> None:
    with pytest.raises(ConfigError, match="no blocks were given"):
        assemble_model("soft_ordering", n_outputs=[2], input_shape=[4])
    with pytest.raises(ConfigError, match="got one MLPBlock; pass \\[block_1, ..., block_D\\]"):
        assemble_model("parallel", n_outputs=[2], input_shape=[4], blocks=MLPBlock(4))  # type: ignore[arg-type]


def test_probes_leave_batch_norm_statistics_alone() -> None:
    blocks = [BasicBlock(4) for _ in range(2)]
    assemble_model("soft_ordering", n_outputs=[2], input_shape=[4, 6, 6], blocks=blocks)
    assert all(int(b.bn1.num_batches_tracked) == 0 for b in blocks)


def test_per_task_modules_declare_their_users() -> None:
    """Structure-aware aggregation reads parameter_users: task t uses only its own encoder and head."""
    model = build("parallel", "transformer")
    x, _ = batch("transformer")
    out = model(x)
    out[0].sum().backward()  # task 0's loss only
    uses = {id(u.param): u.users for u in model.parameter_users()}
    for t, enc in enumerate(model.encoders.per_task):
        for p in enc.parameters():
            assert uses[id(p)].tolist() == [[t == 0], [t == 1]]
            assert (p.grad is not None and bool(p.grad.abs().sum())) == (t == 0)
    shared_head = next(iter(model.heads.shared.parameters()))
    assert uses[id(shared_head)].all()
