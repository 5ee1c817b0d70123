"""The run configuration: YAML keys mirror these dataclasses field for field.

Each field's ``metadata["choices"]`` (where present) lists its valid values; ``metadata["min"]``
a lower bound. The validator in ``sharewise.config.validate`` reads these, so adding a field here
is all it takes for it to be checked, overridable (``train.lr=0.01``) and saved with the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _opt(default: Any, choices: tuple[Any, ...] | None = None, minimum: float | None = None,
         doc: str = "") -> Any:
    meta: dict[str, Any] = {"doc": doc}
    if choices is not None:
        meta["choices"] = choices
    if minimum is not None:
        meta["min"] = minimum
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TasksConfig:
    builder: str = _opt("demo", doc="registered task set (see `sharewise validate --list`)")
    options: dict = _opt({}, doc="keyword options of the task-set builder")


@dataclass
class EncoderConfig:
    kind: str = _opt("dense", ("dense", "identity", "channel_pad"),
                     doc="dense: per-task affine + activation; identity; channel_pad: zero-pad image channels "
                         "(or feature vectors, with a dense core) to the core width")
    activation: str = _opt("relu", ("relu", "linear", "tanh", "sigmoid"))
    frozen: bool = _opt(False, doc="keep the random initial encoder weights fixed (MNIST pairs)")


@dataclass
class CoreConfig:
    kind: str = _opt("dense", ("dense", "conv"))
    width: int = _opt(32, minimum=1, doc="dense width, or conv channels")
    depth: int = _opt(4, minimum=1, doc="number of core layers D (= number of depths)")
    dropout: float = _opt(0.0, minimum=0.0, doc="drop probability after every core layer")
    activation: str = _opt("relu", ("relu", "linear", "tanh", "sigmoid"))
    kernel_size: int = _opt(3, minimum=1)
    pool: bool = _opt(True, doc="2x2 max pool after each conv layer")
    init: str = _opt("torch", ("torch", "glorot"),
                     doc="conv layers' initialisation: PyTorch's Conv2d default, or Glorot-uniform weights and zero "
                         "biases (Keras' default, the soft-ordering paper's framework; dense cores always use it)")
    blocks: list | dict | None = _opt(None, doc="the user's own core blocks: a list of D `_component_` specs, or "
                                           "one that returns the list (a backbone split into stages); then "
                                           "kind/width/activation/kernel_size/pool are not used and depth = D")


@dataclass
class HeadConfig:
    shared: bool = _opt(False, doc="one output layer for all tasks (random-pattern experiment)")
    pool: str = _opt("flatten", ("flatten", "mean"), doc="how conv features reach the linear head")


@dataclass
class ModelConfig:
    """``encoder`` and ``head`` may instead be a user module: a ``_component_`` spec (one module
    for every task) or a list of them (one per task); see ``sharewise.config.components``."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig, metadata={"component": True})
    core: CoreConfig = field(default_factory=CoreConfig)
    head: HeadConfig = field(default_factory=HeadConfig, metadata={"component": True})


@dataclass
class TrainConfig:
    steps: int = _opt(1000, minimum=1, doc="training steps (one batch per task per step)")
    batch_size: int = _opt(64, minimum=1, doc="samples per task per step")
    lr: float = _opt(1e-3, minimum=0.0)
    arch_lr: float | None = _opt(None, minimum=0.0,
                                 doc="learning rate of architecture parameters (default: the scheme's "
                                     "multiplier times lr, or lr)")
    task_lr: float | None = _opt(None, minimum=0.0,
                                 doc="learning rate of the per-task weights stacked on the task axis (heads, "
                                     "encoders; default: lr). In alternating mode each of them gets one update "
                                     "per step while shared weights get T")
    lr_schedule: str = _opt("constant", ("constant", "cosine", "linear"),
                            doc="multiplier of every group's learning rate over train.steps: constant (the "
                                "papers'), cosine or linear decay to train.min_lr_ratio (see training/schedule.py)")
    warmup_steps: int = _opt(0, minimum=0, doc="linear warm-up of every learning rate over the first N steps")
    min_lr_ratio: float = _opt(0.0, minimum=0.0, doc="where a cosine or linear schedule ends, as a fraction of "
                                                     "the configured rates (0: decay to zero)")
    optimizer: str = _opt("adam", ("adam", "sgd", "rmsprop"))
    weight_decay: float = _opt(0.0, minimum=0.0)
    grad_clip: float | None = _opt(None, minimum=0.0, doc="clip the global gradient norm")
    eval_every: int = _opt(500, minimum=1)
    eval_batch_size: int = _opt(2048, minimum=1)
    data_workers: int = _opt(0, minimum=0, doc="DataLoader worker processes that fetch streamed (Dataset) "
                                             "tasks' batches; in-memory tasks ignore it")
    mode: str = _opt("joint", ("joint", "alternating"),
                     doc="joint: one summed update per step; alternating: one update per task, shuffled")
    threads: int | None = _opt(None, minimum=1, doc="torch intra-op threads (default: torch's)")
    precision: str = _opt("fp32", ("fp32", "bf16"),
                          doc="fp32; or bf16: the training forward pass under torch.autocast (bfloat16 on CPU "
                              "and CUDA), float32 master weights, gradients, optimiser state and losses")
    select_by: str = _opt("val_loss", ("val_loss", "val_error", "last"),
                          doc="which evaluated state is kept as the result: lowest summed validation loss "
                              "(the paper's), lowest mean validation error, or the last one")
    weighting: str = _opt("equal", ("equal", "uncertainty", "dwa", "gradnorm"),
                          doc="task loss weighting: equal (summed losses), uncertainty (Kendall et al. 2018), "
                              "dwa (Liu et al. 2019), gradnorm (Chen et al. 2018); see training/weighting.py")
    weighting_options: dict = _opt({}, doc="keyword options of the weighting (dwa: temperature, window; "
                                           "gradnorm: alpha)")
    weighting_lr: float | None = _opt(None, minimum=0.0,
                                      doc="learning rate of the weighting's own parameters (default: train.lr)")
    aggregator: str | None = _opt(None, doc="TorchJD gradient aggregator by name (upgrad, mgda, pcgrad, cagrad, "
                                            "imtlg, mean, ...; needs sharewise[jd]); null: sum the losses")
    aggregator_options: dict = _opt({}, doc="keyword arguments of the aggregator (e.g. cagrad: {c: 0.5})")
    structure_aware: bool = _opt(False, doc="aggregate each parameter block over only the tasks that use it "
                                            "this step (branches, single-task copies, allocated components)")
    checkpoint_every: int = _opt(500, minimum=0,
                                 doc="write checkpoint.pt every N steps for exact resume (0: only at the "
                                     "end and on SIGINT/SIGTERM)")


@dataclass
class RunConfig:
    name: str = _opt("run")
    imports: list = _opt([], doc="Python modules to import before the config is checked: they register "
                                 "schemes and task sets that live outside sharewise (e.g. [my_lab.my_scheme])")
    seed: int = _opt(0, minimum=0)
    scheme: str = _opt("soft_ordering", doc="sharing scheme (see `sharewise validate --list`)")
    scheme_options: dict = _opt({}, doc="keyword options of the scheme builder")
    tasks: TasksConfig = field(default_factory=TasksConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    adapt: dict = _opt({}, doc="set by `sharewise adapt`: {run: the parent run directory, attach: for a branched "
                               "parent, the parent task each new task follows (null: the default rule)}; the "
                               "parent's shared blocks are loaded and frozen, only the new tasks' parts train")
