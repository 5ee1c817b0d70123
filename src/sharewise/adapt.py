"""``sharewise adapt PARENT_RUN_DIR CONFIG``: new tasks trained over a finished run's frozen blocks.

Meyerson & Miikkulainen (Sec. 6) propose training a collection of layers on a set of tasks and
then assembling them in new ways for unseen tasks. Here the new tasks get fresh encoders and
heads and fresh structure parameters (soft-order logits, Gumbel-Matrix allocation logits, new
permutations; for a branched parent, the branch each task follows, see
``sharewise.sharing.branched.attach_rule``), while the parent's shared blocks are copied and
frozen (``SharingScheme.adopt_shared``). The adapted run is an ordinary run directory: its
``config.yaml`` is the parent's model and scheme with the new config's tasks, training, seed
and name, plus ``adapt: {run: PARENT, attach: ...}``, so ``run --resume``, ``report`` and
``validate`` treat it like any run; the frozen blocks are reloaded from the parent on resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sharewise.errors import AdaptError

FROM_NEW = ("name", "seed", "tasks", "train", "imports")  # what the new config decides
FROM_PARENT = ("scheme", "scheme_options", "model")  # the architecture the shared blocks belong to


def read_parent(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(resolved config, summary.json, best model state) of a finished parent run."""
    from sharewise.config import read_yaml

    run_dir = Path(run_dir)
    missing = [n for n in ("config.yaml", "summary.json", "best.pt") if not (run_dir / n).is_file()]
    if missing:
        raise AdaptError(f"{str(run_dir)!r} is not a finished run directory (missing {', '.join(missing)}); adapt "
                         f"needs the --out directory of a run that has finished")
    from sharewise.rundir import read_best_state, read_summary

    return read_yaml(run_dir / "config.yaml"), read_summary(run_dir), read_best_state(run_dir)


def adapted_config(parent_dir: str | Path, new: dict[str, Any], new_task_names: Sequence[str],
                   attach: Sequence[str | None] | None = None) -> dict[str, Any]:
    """The adapted run's configuration: the parent's architecture, the new config's tasks and
    training. A new config that sets the scheme, its options or the model to something else than
    the parent's is an error (the shared blocks are the parent's)."""
    from sharewise.config import config_to_dict, parse_config
    from sharewise.sharing import scheme_class

    parent_cfg, summary, _ = read_parent(parent_dir)
    parent = config_to_dict(parse_config(parent_cfg))
    given = {k: new[k] for k in FROM_PARENT if k in new}
    if given:
        mine = config_to_dict(parse_config({**parent, **given, "adapt": {}}))
        differ = [k for k in given if mine[k] != parent[k]]
        if differ:
            raise AdaptError(f"the config sets {differ} to other values than the parent run {str(parent_dir)!r}; adapt "
                             f"trains over the parent's frozen blocks, so it uses the parent's scheme and model: "
                             f"remove {differ} from the config")
    cfg = {**parent, **{k: new[k] for k in FROM_NEW if k in new}}
    if "train" in new:  # the new config's train section, on top of the defaults (not the parent's)
        cfg["train"] = new["train"]
    structure = dict(summary.get("structure") or {})
    structure.setdefault("tasks", list(summary.get("tasks", {})))
    cls = scheme_class(parent["scheme"])
    cfg["scheme_options"] = cls.adapted_options(parent.get("scheme_options") or {}, structure, list(new_task_names),
                                                list(attach) if attach is not None else None)
    cfg["adapt"] = {"run": str(Path(parent_dir).resolve()), "attach": list(attach) if attach is not None else None}
    return cfg


def check_input_kind(parent_shapes: Sequence[Sequence[int]], new_shapes: dict[str, Sequence[int]],
                     encoder_kind: str | None) -> None:
    """New tasks must reach the shared blocks as the parent's did: per-task dense encoders take
    any width but the same kind of input (vectors or images); other encoders (identity,
    channel padding, the user's) need exactly the parent's per-sample shape."""
    parent = {tuple(s) for s in parent_shapes}
    ranks = {len(s) for s in parent}
    kind = lambda s: "vectors" if len(s) == 1 else f"{len(s)}-axis arrays (images are [C, H, W])"  # noqa: E731
    bad = {}
    for name, shape in new_shapes.items():
        shape = tuple(shape)
        ok = len(shape) in ranks if encoder_kind == "dense" else shape in parent
        if not ok:
            bad[name] = list(shape)
    if bad:
        listed = ", ".join(f"{n}: {s}" for n, s in bad.items())
        want = sorted(list(s) for s in parent)
        raise AdaptError(f"the new tasks' inputs do not match the parent run's: parent tasks take {want} "
                         f"({kind(next(iter(parent)))}), but {listed}. "
                         + ("Dense encoders take any width but the same kind of input; "
                            if encoder_kind == "dense" else
                            f"Encoder kind {encoder_kind!r} feeds the inputs to the shared blocks as they are, so "
                            f"they need the parent's shape; ")
                         + "adapt over a run trained on the same kind of input")


def adopt_parent(model: Any, cfg: Any) -> list[str]:
    """Load the parent's shared blocks into ``model`` (built for the new tasks) and freeze them."""
    run = (cfg.adapt or {}).get("run")
    unknown = sorted(set(cfg.adapt) - {"run", "attach"})
    if not run or unknown:
        raise AdaptError(f"adapt: expected {{run: PARENT_RUN_DIR, attach: ...}} (written by `sharewise adapt`), "
                         f"but got {cfg.adapt!r}")
    _, summary, state = read_parent(run)
    structure = dict(summary.get("structure") or {})
    structure.setdefault("tasks", list(summary.get("tasks", {})))
    prefix = "scheme."
    scheme_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return model.scheme.adopt_shared(scheme_state, structure, cfg.adapt.get("attach"))


def adapt(parent_dir: str | Path, new_cfg: dict[str, Any], out: str | Path, data_dir: str | None = None,
          overwrite: bool = False, attach: Sequence[str | None] | None = None, **flags: Any) -> dict[str, Any] | None:
    """Train the new tasks of ``new_cfg`` over ``parent_dir``'s frozen shared blocks into ``out``."""
    from sharewise.config import parse_config
    from sharewise.data.tasksets import build_tasks
    from sharewise.runner import run

    parent_cfg = parse_config(read_parent(parent_dir)[0])
    probe = parse_config({**new_cfg, "adapt": {}})
    new_tasks = build_tasks(probe.tasks.builder, data_dir=data_dir, seed=probe.seed, options=probe.tasks.options)
    from sharewise.rundir import recorded_data_dir

    parent_data = recorded_data_dir(parent_dir)
    parent_tasks = build_tasks(parent_cfg.tasks.builder, data_dir=parent_data or data_dir, seed=parent_cfg.seed,
                               options=parent_cfg.tasks.options)
    enc = parent_cfg.model.encoder
    check_input_kind([t.input_shape for t in parent_tasks], {t.name: t.input_shape for t in new_tasks},
                     getattr(enc, "kind", None))
    cfg = adapted_config(parent_dir, new_cfg, [t.name for t in new_tasks], attach)
    return run(cfg, out, data_dir=data_dir, overwrite=overwrite, **flags)
