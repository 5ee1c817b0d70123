"""Gumbel-Matrix routing (Maziarz et al., "Flexible Multi-task Networks by Learning Parameter
Allocation") and its fixed baselines ``shared_bottom`` and ``no_sharing``.

Per modular layer l, allocation logits ``[T, C_l, 2]`` start at log([p_init, 1 - p_init]);
p = softmax(logits)[..., 0] (Sec. III-A). Training draws a straight-through Gumbel-Softmax sample
z in {0, 1} per (task, component) (Sec. III-B) from a ``torch.Generator`` owned by the scheme
(attribute ``generator``, seeded from the run seed; ``generator_state()`` /
``set_generator_state()``; the trainer's checkpoint finds generator attributes by itself), so
runs are reproducible and resume exactly; the temperature is a function of the step the trainer
passes to ``on_update``, so it needs no state of its own. Evaluation uses the maximum-likelihood allocation p >= 0.5
(Sec. III-C) unless ``eval_sampling``. Task t's output in a layer is the mean of its active
components (see ``sharewise.components.modular``).

Options (the builder's keyword arguments, i.e. a config's ``scheme_options``):

- ``network``: ``"core"`` (every core layer becomes a modular layer of ``n_components`` (4) fresh
  layers from ``core.make_bank``; with a named network ``n_components`` is an error, the
  network's own ``network_options`` set its components) or a named network of ``MODULAR_NETWORKS`` (``mlp``,
  ``transfer``, ``mnist4``, ``omniglot20``, ``clusters``) built on ``core.feature_shape`` with
  ``network_options``.
- ``p_init`` (0.5), ``temperature_initial`` (50), ``temperature_floor`` (0.5): tau(step) =
  max(floor, initial / sqrt(step + 1)), stepped by ``on_update``.
- ``budget`` (None = no penalty; else in (0, 1]) and ``budget_weight`` lambda (1.0): the penalty
  lambda * max(0, e_c - b) (Sec. III-D), e_c = mean connection probability of the tasks in the
  latest forward pass over all layers' components (per task in the paper's alternating mode).
- ``arch_lr_multiplier`` (None = T): the allocation logits' learning rate is this multiple of
  the model's (Sec. V-B: the logits are updated once every T single-task steps, so the paper's
  rule of thumb is T times; e.g. Omniglot-20: 2e-3 vs 1e-4). Set 1 for the 4-MNISTs setting.
- ``components``: the user's own modular layers instead of ``network`` (a list of lists of
  modules, the same in / out shape within a layer; from YAML, ``_component_`` specs).
- ``eval_sampling`` (False): sample allocations (with noise) at evaluation instead of ML.
- ``keep_one_component`` (False): a task whose allocation in a layer would be all zeros (a
  constant output there, the paper's rule) gets its most probable component turned on, in
  training samples and at evaluation. Either way, tasks whose evaluation allocation is empty in
  a layer are listed in ``learned_structure()["empty_allocations"]`` and reported as warnings.
- ``execution`` ("auto": stacked unless the stacked component outputs exceed a size cut-off,
  then per task), ``task_chunk`` (1: tasks per chunk in per_task execution),
  ``inactive_no_grad`` (False; exact but measured slower here): execution paths, all exact
  (tested equal to the loop reference); see ``sharewise.components.modular``.
- core dropout is applied once, to the network's output (4-MNISTs: dropout 0.5 before heads).

``learned_structure()`` keys tasks by their index as a string ("0", "1", ...).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import torch
from torch import Tensor, nn

from sharewise.components.dropout import packed_dropout
from sharewise.components.layer_bank import ModuleLayerBank
from sharewise.components.modular import EXECUTIONS, ModularLayer, ModularNetwork
from sharewise.components.modular_sets import MODULAR_NETWORKS, build_modular_network
from sharewise.components.usage import ParameterUse, task_rows, with_rest_used_by_all
from sharewise.errors import ConfigError
from sharewise.options import AT_LEAST_ONE, NON_NEGATIVE, OPEN_PROBABILITY, POSITIVE, Range, check_options, is_set
from sharewise.sharing._gumbel import (
    TemperatureSchedule,
    allocation_logits_init,
    connection_probability,
    empty_allocations,
    gumbel_noise,
    keep_one_active,
    ml_allocation,
    straight_through_sample,
)
from sharewise.sharing._keys import probability_key
from sharewise.sharing._sampled_mix import sampled_mix_weights
from sharewise.sharing._registry import register_scheme
from sharewise.sharing.base import SharingScheme, StructureFigure, task_list
from sharewise.sharing.core_spec import CoreSpec


DEFAULT_COMPONENTS = 4  # components per modular layer of network "core"
NETWORKS = ("core", *MODULAR_NETWORKS)  # scheme_options.network


class _ModularScheme(SharingScheme):
    """Shared plumbing: a modular network, its execution options and the output dropout."""

    def __init__(self, network: ModularNetwork, n_tasks: int, *, dropout: float = 0.0,
                 execution: str = "auto", task_chunk: int = 1, inactive_no_grad: bool = False) -> None:
        super().__init__(n_tasks)
        network.resolve_execution(execution, 1, 1)  # validates the name
        if task_chunk < 1:
            raise ConfigError(f"task_chunk must be >= 1, but got {task_chunk}")
        self.network, self.dropout = network, dropout
        self.execution, self.task_chunk, self.inactive_no_grad = execution, task_chunk, inactive_no_grad

    @abc.abstractmethod
    def allocation(self, tasks: Sequence[int] | None = None) -> list[Tensor]:
        """Per layer ``[T', C_l]`` in {0, 1}: the allocation used by a forward pass now."""

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        ids = task_list(tasks, self.n_tasks)
        if x.shape[0] != len(ids):
            raise ConfigError(f"expected {len(ids)} stacked tasks (tasks={ids}), but got x of shape {list(x.shape)}")
        self._last_tasks = ids
        z, w = self.routing(ids)
        self._last_allocation = [a.detach() for a in z]
        y = self.network(x, z, execution=self.execution, task_chunk=self.task_chunk,
                         inactive_no_grad=self.inactive_no_grad, weights=w)
        return packed_dropout(y, self.dropout, self.training)

    def routing(self, ids: list[int]) -> tuple[list[Tensor], list[Tensor] | None]:
        """The allocation of a forward pass and, where computed with it, every layer's mixing
        weights (None: each layer computes ``mix_weights(z)`` itself)."""
        return self.allocation(ids), None

    def parameter_users(self, tasks: Sequence[int] | None = None) -> list[ParameterUse]:
        """Task t uses component c of layer l iff z[t, c] = 1 in the latest forward pass (its
        mixing weight is 0 otherwise, so it sends no gradient to the component: Sec. III-B's
        straight-through sample is exactly binary); stem and post layers are used by all;
        allocation logits are task-owned (row t)."""
        ids = task_list(tasks, self.n_tasks)
        z = getattr(self, "_last_allocation", None)
        if z is None or z[0].shape[0] != len(ids):
            raise RuntimeError(f"parameter_users({ids}) needs a forward pass over these tasks first")
        declared = [u for layer, a in zip(self.network.layers, z) for u in layer.bank.layer_uses(a.cpu() > 0)]
        declared += [task_rows(p, ids) for p in self.architecture_parameters()]
        return with_rest_used_by_all(self, declared, len(ids))

    def export_task(self, task: int) -> nn.Module:
        """Task t's evaluation network with its inactive components removed: each modular layer
        becomes the mean of the components its allocation keeps (zeros if none)."""
        import copy

        from sharewise.components.plain import MeanOf, Zeros
        from sharewise.errors import ExportError

        if getattr(self, "eval_sampling", False):
            raise ExportError("this Gumbel-Matrix run samples a fresh allocation at every evaluation "
                              "(scheme_options.eval_sampling=true), so no single network computes a task; export "
                              "needs the maximum-likelihood allocation (eval_sampling=false)")
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                z = [a[0] for a in self.allocation([task])]  # per layer [C_l]
        finally:
            self.train(was)
        parts: list[nn.Module] = [copy.deepcopy(self.network.stem)]
        for layer, post, active in zip(self.network.layers, self.network.post, z):
            kept = [layer.bank.export_layer(c) for c in range(layer.n_components) if bool(active[c] > 0.5)]
            parts += [MeanOf(kept) if kept else Zeros(layer.out_shape), copy.deepcopy(post)]
        return nn.Sequential(*parts)

    #: Fig. 8 (connection probabilities over training) is drawn for the first tasks only.
    MAX_PROBABILITY_PLOTS = 8

    @classmethod
    def render_structure(cls, structure: Mapping[str, Any], records: Sequence[Mapping[str, Any]] = ()
                         ) -> tuple[list[StructureFigure], dict[str, Any]]:
        """The allocation (Fig. 5), the task similarity of the allocations (Fig. 6), the task
        similarity of the final connection probabilities and, where the probabilities were logged,
        each task's connection probabilities over training (Fig. 8)."""
        from sharewise.reporting import allocation_plots as ap

        rest = dict(structure)
        names = structure.get("tasks")
        figures = []
        if "allocation" in rest:
            figures.append(StructureFigure("allocation", ap.plot_allocation(rest.pop("allocation"), names)[0],
                                           "allocation (task x component, layers concatenated)"))
        if "task_similarity" in rest:
            figures.append(StructureFigure("task_similarity",
                                           ap.plot_task_similarity(rest.pop("task_similarity"), names)[0],
                                           "task similarity (task x task, cosine of the allocations)"))
        if "probabilities" in rest and names:
            # the centred cosine of the probabilities: a family signal shows here before (or without)
            # the allocation's 0/1 showing it (docs/results.md §2.9); centred, since all p are positive
            from sharewise.analysis.families import centred_cosine, probability_vectors

            sim = centred_cosine(probability_vectors(rest["probabilities"], len(names)))
            figures.append(StructureFigure("probability_similarity",
                                           ap.plot_task_similarity(sim.tolist(), names, vmin=-1.0,
                                                                   title="Centred cosine of the probabilities")[0],
                                           "task similarity (task x task, centred cosine of the connection "
                                           "probabilities)"))
        _, probs = ap.probability_curves(records)  # [S, T, L, C]
        for t in range(min(probs.shape[1], cls.MAX_PROBABILITY_PLOTS) if probs.size else 0):
            fig, _ = ap.plot_allocation_probabilities(records, t, structure.get("components"),
                                                      names[t] if names else None)
            figures.append(StructureFigure(f"allocation_probabilities_t{t}", fig,
                                           f"connection probabilities of task {names[t] if names else t} over training"))
        return figures, rest

    def _structure(self, alloc: list[Tensor]) -> dict[str, Any]:
        per_task = {str(t): [a[t].int().tolist() for a in alloc] for t in range(self.n_tasks)}
        flat = torch.cat(alloc, dim=1).double()  # [T, sum_l C_l]
        return {
            "allocation": per_task,
            "active_fraction": float(flat.mean()),
            "task_similarity": _cosine(per_task, flat),
            "components": [layer.names for layer in self.network.layers],
        }


def _task_rows(x: Tensor, ids: list[int]) -> Tensor:
    """``x[ids]``; a slice (a view, no gather) when ``ids`` are consecutive (one task, all tasks)."""
    if ids and ids == list(range(ids[0], ids[0] + len(ids))):
        return x[ids[0]:ids[0] + len(ids)]
    return x[ids]


def _cosine(per_task: dict[str, list[list[int]]], flat: Tensor) -> list[list[float]]:
    try:
        from sharewise.analysis.embeddings import cosine_similarity_matrix, task_embeddings
    except ImportError:  # the analysis module is optional here; same definition inline
        norms = flat.norm(dim=1, keepdim=True)
        unit = torch.where(norms > 0, flat / norms.clamp(min=1e-12), torch.zeros_like(flat))
        return (unit @ unit.T).clamp(-1, 1).tolist()
    return cosine_similarity_matrix(task_embeddings(per_task)).tolist()


class GumbelMatrix(_ModularScheme):
    """Learned binary allocation of components to tasks (see module docstring)."""

    def __init__(self, network: ModularNetwork, n_tasks: int, *, seed: int = 0, p_init: float = 0.5,
                 temperature: TemperatureSchedule | None = None, budget: float | None = None,
                 budget_weight: float = 1.0, eval_sampling: bool = False,
                 arch_lr_multiplier: float | None = None, keep_one_component: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(network, n_tasks, **kwargs)
        self.keep_one_component = keep_one_component
        if budget is not None and not 0.0 < budget <= 1.0:
            raise ConfigError(f"budget must be in (0, 1] (a fraction of active allocations), but got {budget}")
        if budget_weight < 0:
            raise ConfigError(f"budget_weight must be >= 0, but got {budget_weight}")
        self.logits = nn.ParameterList(
            nn.Parameter(allocation_logits_init((n_tasks, c), p_init)) for c in network.components_per_layer
        )  # per layer [T, C_l, 2]
        self.temperature_schedule = temperature or TemperatureSchedule()
        self.n_updates = 0
        self.temperature = self.temperature_schedule(0)
        self.budget, self.budget_weight, self.eval_sampling = budget, budget_weight, eval_sampling
        self.arch_lr_multiplier = float(n_tasks if arch_lr_multiplier is None else arch_lr_multiplier)
        self.generator = torch.Generator().manual_seed(int(seed))
        self._last_tasks: list[int] = list(range(n_tasks))
        self._last_sample: list[Tensor] | None = None

    # --- sampling -------------------------------------------------------------------------
    def allocation(self, tasks: Sequence[int] | None = None) -> list[Tensor]:
        ids = task_list(tasks, self.n_tasks)
        logits = [_task_rows(lg, ids) for lg in self.logits]  # per layer [T', C_l, 2]
        if not self.training and not self.eval_sampling:
            z = [ml_allocation(lg) for lg in logits]
        else:
            # Noise drawn once per forward pass, independently for both logits of every connection;
            # all layers in one draw and one sample (the generator's stream is the same as one draw
            # per layer in turn: the flat order is layer by layer).
            flat = torch.cat([lg.reshape(-1, 2) for lg in logits])  # [sum_l T'*C_l, 2]
            sample = straight_through_sample(flat, gumbel_noise(tuple(flat.shape), self.generator).to(flat),
                                             self.temperature)
            z = [part.view(lg.shape[:-1]) for part, lg in zip(sample.split([lg.shape[0] * lg.shape[1] for lg in logits]),
                                                                   logits)]
        if self.keep_one_component:
            z = [keep_one_active(a, lg) for a, lg in zip(z, logits)]
        if self.training or self.eval_sampling:
            self._last_sample = [s.detach() for s in z]
        return z

    def routing(self, ids: list[int]) -> tuple[list[Tensor], list[Tensor] | None]:
        """A training sample's allocation and mixing weights in one autograd node (the same
        noise draw, values and gradients as ``allocation`` + ``mix_weights``, tested; see
        ``sharing/_sampled_mix.py``); evaluation and ``keep_one_component`` take the reference path."""
        sizes = self.network.components_per_layer
        if not self.training or self.keep_one_component or len(set(sizes)) > 1:
            return super().routing(ids)
        logits = self._logit_list()
        noise = gumbel_noise((len(ids) * sum(sizes), 2), self.generator).to(logits[0])
        z, w = sampled_mix_weights(logits, ids, noise, self.temperature)
        self._last_sample = z
        return z, w

    def _logit_list(self) -> list[nn.Parameter]:
        """``list(self.logits)`` without ParameterList's per-item string lookups (~10 us a pass)."""
        return list(self.logits._parameters.values())  # type: ignore[arg-type]

    def ml_allocation(self) -> list[Tensor]:
        """Per layer ``[T, C_l]``: the evaluation allocation (p >= 0.5, and the most probable
        component in an otherwise empty row with ``keep_one_component``)."""
        z = [ml_allocation(lg) for lg in self.logits]
        return [keep_one_active(a, lg) for a, lg in zip(z, self.logits)] if self.keep_one_component else z

    def structure_warnings(self, task_names: Sequence[str]) -> list[str]:
        """A task with no active component in a layer outputs a constant there (the paper's rule;
        seen on the 139-task school data as about twice every other scheme's RMSE)."""
        with torch.no_grad():
            empty = empty_allocations(self.ml_allocation())
        return [f"Gumbel-Matrix task {task_names[t]!r} has no active component in layer {l} (its "
                f"allocation there is all zeros, so its output is constant); scheme_options."
                f"keep_one_component=true keeps the most probable component on" for t, l in empty]

    def probabilities(self) -> list[Tensor]:
        """Per layer ``[T, C_l]``: p = softmax(logits)[..., 0]."""
        return [connection_probability(lg) for lg in self.logits]

    # --- contract ---------------------------------------------------------------------------
    def architecture_parameters(self) -> list[nn.Parameter]:
        return list(self.logits)

    def task_stacked_parameters(self) -> list[nn.Parameter]:
        return list(self.logits)  # per layer [T, C_l, 2]

    def parameter_owners(self) -> list[ParameterUse]:
        """No component belongs to a task: the allocation is sampled every step and all
        components run in every forward pass, so a component that task t's sample leaves out
        gets a zero gradient in t's update and Adam's momentum still moves it. That is the
        paper's setting too (one Adam over all shared weights; TensorFlow skips only variables
        outside the graph, and every component is in it), so components stay shared on purpose."""
        return []

    def architecture_lr(self, lr: float) -> float:
        return lr * self.arch_lr_multiplier  # Sec. V-B: T times by default

    def on_update(self, n_updates: int) -> None:
        self.n_updates = int(n_updates)
        self.temperature = self.temperature_schedule(self.n_updates)

    def expected_active(self, tasks: Sequence[int] | None = None) -> Tensor:
        """e_c: mean p over the given tasks' connections in all layers (Sec. III-D)."""
        ids = task_list(tasks, self.n_tasks)
        return torch.cat([connection_probability(lg[ids]).flatten() for lg in self.logits]).mean()

    def regularizer(self) -> Tensor | None:
        if self.budget is None:
            return None
        return self.budget_weight * torch.relu(self.expected_active(self._last_tasks) - self.budget)

    def step_metrics(self) -> dict[str, float]:
        """temperature; active_fraction (ML allocation) and expected_active (mean p) over all
        tasks; sampled_active_fraction of the latest training sample; budget_penalty over all
        tasks (the loss term itself, ``regularizer()``, covers the latest forward's tasks); and
        ``prob/t{task}/l{layer}/c{component}``: each connection probability p (for Fig. 8)."""
        with torch.no_grad():
            metrics = {
                "temperature": float(self.temperature),
                "active_fraction": float(torch.cat([ml_allocation(lg).flatten() for lg in self.logits]).mean()),
                "expected_active": float(self.expected_active()),
            }
            if self._last_sample is not None:
                metrics["sampled_active_fraction"] = float(torch.cat([s.flatten() for s in self._last_sample]).mean())
            if self.budget is not None:
                metrics["budget_penalty"] = float(self.budget_weight * torch.relu(self.expected_active() - self.budget))
            # Fig. 8: every connection probability, flat so that scalar loggers can take them.
            for l, p in enumerate(self.probabilities()):  # [T, C_l]
                for t, row in enumerate(p.tolist()):
                    for c, value in enumerate(row):
                        metrics[probability_key(t, l, c)] = value
        return metrics

    def learned_structure(self) -> dict[str, Any]:
        with torch.no_grad():
            alloc = self.ml_allocation()
            out = self._structure(alloc)
            out["empty_allocations"] = [{"task": t, "layer": l} for t, l in empty_allocations(alloc)]
            out["keep_one_component"] = self.keep_one_component
            out["probabilities"] = {str(t): [p[t].tolist() for p in self.probabilities()] for t in range(self.n_tasks)}
        out["budget"] = self.budget
        return out

    # --- exact resume (the generator is the only state outside parameters) -----------------------------------------------------------------------
    def generator_state(self) -> Tensor:
        return self.generator.get_state()

    def set_generator_state(self, state: Tensor) -> None:
        self.generator.set_state(state)


class FixedAllocation(_ModularScheme):
    """A fixed 0/1 allocation per layer ``[T, C_l]`` (the 'shared bottom' / 'no sharing' baselines)."""

    def __init__(self, network: ModularNetwork, n_tasks: int, allocation: Sequence[Tensor], pattern: str,
                 **kwargs: Any) -> None:
        super().__init__(network, n_tasks, **kwargs)
        self.pattern = pattern
        for l, z in enumerate(allocation):
            self.register_buffer(f"alloc_{l}", z.float())  # [T, C_l]

    def allocation(self, tasks: Sequence[int] | None = None) -> list[Tensor]:
        ids = task_list(tasks, self.n_tasks)
        return [getattr(self, f"alloc_{l}")[ids] for l in range(len(self.network.layers))]

    def task_state_names(self) -> set[str]:
        return {f"alloc_{l}" for l in range(len(self.network.layers))}

    def adopt_shared(self, parent_state: Mapping[str, Any], parent_structure: Mapping[str, Any],
                     attach: Sequence[str] | None) -> list[str]:
        if self.pattern == "no_sharing":
            from sharewise.errors import AdaptError

            raise AdaptError("no_sharing gives every component to one of the parent's tasks, so there are no shared "
                             "blocks to adapt new tasks over; adapt over a gumbel_matrix or shared_bottom run")
        return super().adopt_shared(parent_state, parent_structure, attach)

    def learned_structure(self) -> dict[str, Any]:
        return {"pattern": self.pattern, **self._structure(self.allocation())}

    def parameter_owners(self) -> list[ParameterUse]:
        """The fixed allocation says who owns a component (no_sharing: one task each; shared
        bottom: all, so nothing is declared). Unlike GumbelMatrix's sampled allocation."""
        return [u for layer, z in zip(self.network.layers, self.allocation()) for u in layer.bank.layer_uses(z > 0)]


def no_sharing_allocation(n_tasks: int, n_components: int) -> Tensor:
    """``[T, C]``: component c belongs to task floor(c * T / C) (T = C: task i uses component i;
    Sec. II with T = 2, C = 4: components {0, 1} and {2, 3})."""
    if n_tasks > n_components:
        raise ConfigError(
            f"no_sharing gives every task its own component, so it needs T <= C, but got "
            f"T={n_tasks} tasks and C={n_components} components per layer; use shared_bottom or gumbel_matrix."
        )
    owner = torch.arange(n_components) * n_tasks // n_components  # [C]
    return (owner.unsqueeze(0) == torch.arange(n_tasks).unsqueeze(1)).float()  # [T, C]


def build_network(core: CoreSpec, network: str, n_components: int | None,
                  network_options: dict[str, Any] | None,
                  components: Sequence[Sequence[nn.Module]] | None = None) -> ModularNetwork:
    """The modular network the allocation routes through.

    ``components`` (the user's own): one list of modules per modular layer, the same in / out
    shape within a layer (``[[c11, c12, ...], [c21, ...], ...]``); layer 1 takes the encoders'
    output. Else ``network="core"``: one modular layer of ``n_components`` (default 4) copies of
    core block d per depth d; else a named network, whose own options (its component count too)
    are ``network_options``.
    """
    if components is not None:
        if network != "core" or network_options or n_components is not None:
            raise ConfigError("scheme_options.components gives the modular layers, so network, n_components "
                              "and network_options must be left unset")
        return user_modular_network(components, core.feature_shape)
    if network != "core":
        if n_components is not None:
            raise ConfigError(f"scheme_options.n_components={n_components} sets the components of network 'core' "
                              f"only; network {network!r} takes its options from scheme_options.network_options "
                              f"(e.g. network_options.n_components)")
        return build_modular_network(network, core.feature_shape, **(network_options or {}))
    n_components = DEFAULT_COMPONENTS if n_components is None else n_components
    if network_options:
        raise ConfigError(f"network 'core' takes no network_options, but got {sorted(network_options)}")
    layers, shape = [], tuple(core.feature_shape)
    for d in range(core.depth):
        layers.append(ModularLayer(core.bank_of_blocks([d] * n_components), shape))
        shape = layers[-1].out_shape
    return ModularNetwork(layers, core.feature_shape)


def user_modular_network(components: Sequence[Sequence[nn.Module]], in_shape: Sequence[int]) -> ModularNetwork:
    """Modular layers over the user's components; shapes are probed layer by layer (errors name them)."""
    if isinstance(components, nn.Module) or not len(components):
        raise ConfigError("scheme_options.components: expected a list of modular layers, each a list of "
                          f"modules ([[c11, c12], [c21, c22]]), but got {type(components).__name__}")
    layers, shape = [], tuple(int(s) for s in in_shape)
    for l, layer in enumerate(components):
        if isinstance(layer, nn.Module) or not len(layer):
            raise ConfigError(f"scheme_options.components[{l}]: expected a non-empty list of modules, but got "
                              f"{type(layer).__name__}")
        bad = [f"{c}: {type(m).__name__}" for c, m in enumerate(layer) if not isinstance(m, nn.Module)]
        if bad:
            raise ConfigError(f"scheme_options.components[{l}]: every component must be a torch.nn.Module, but "
                              f"got {', '.join(bad)}")
        names = [f"l{l}c{c}:{type(m).__name__}" for c, m in enumerate(layer)]
        layers.append(ModularLayer(ModuleLayerBank(list(layer), names=names), shape, names=names))
        shape = layers[-1].out_shape
    return ModularNetwork(layers, tuple(int(s) for s in in_shape))


def check_modular_options(options: dict[str, Any], cfg: Any, given: dict[str, Any]) -> list[str]:
    """Rules across options: what a named network makes ineffective, its own options, and a
    budget weight without a budget (``cfg``: the parsed RunConfig, ``given``: as written)."""
    problems: list[str] = []  # options at their defaults are never "ignored" (resolved configs hold them)
    network = options.get("network", "core")
    if network == "core":
        if options.get("network_options"):
            problems.append(f"scheme_options.network_options: network 'core' takes none (its layers are "
                            f"model.core's), got {options['network_options']!r}; remove it or name a network")
    else:
        if options.get("n_components") is not None:
            problems.append(f"scheme_options.n_components: has no effect with network {network!r} (only network "
                            f"'core' takes it), got {options['n_components']!r}; set "
                            f"scheme_options.network_options.n_components instead where the network takes one")
        fixed = ["depth", "activation", "kernel_size", "pool"]
        if getattr(cfg.model.encoder, "kind", None) == "identity" and getattr(cfg.model.core, "kind", None) == "conv":
            fixed.append("width")  # read by neither the encoder nor the named network
        for key in fixed if dataclasses.is_dataclass(cfg.model.core) else ():
            if is_set(given, f"model.core.{key}", getattr(type(cfg.model.core)(), key)):
                problems.append(f"model.core.{key}: has no effect with scheme_options.network={network!r} (the "
                                f"named network fixes its own layers), got {getattr(cfg.model.core, key)!r}; remove it")
        check_options(MODULAR_NETWORKS[network], dict(options.get("network_options") or {}),
                      "scheme_options.network_options.", problems, skip=("in_shape",))
    if options.get("budget_weight", 1.0) != 1.0 and options.get("budget") is None:
        problems.append(f"scheme_options.budget_weight: has no effect without scheme_options.budget, got "
                        f"{options['budget_weight']!r}; set a budget in (0, 1] or remove it")
    return problems


@register_scheme("gumbel_matrix", check=check_modular_options)
def build_gumbel_matrix(core: CoreSpec, n_tasks: int, *, seed: int = 0, network: Literal[NETWORKS] = "core",
                        n_components: Annotated[int | None, AT_LEAST_ONE] = None,
                        network_options: dict[str, Any] | None = None,
                        p_init: Annotated[float, OPEN_PROBABILITY] = 0.5,
                        temperature_initial: Annotated[float, POSITIVE] = 50.0,
                        temperature_floor: Annotated[float, POSITIVE] = 0.5,
                        budget: Annotated[float | None, Range(0, 1, low_open=True)] = None,
                        budget_weight: Annotated[float, NON_NEGATIVE] = 1.0, eval_sampling: bool = False,
                        arch_lr_multiplier: Annotated[float | None, POSITIVE] = None,
                        execution: Literal[EXECUTIONS] = "auto", task_chunk: Annotated[int, AT_LEAST_ONE] = 1,
                        inactive_no_grad: bool = False, components: list | None = None,
                        keep_one_component: bool = False) -> GumbelMatrix:
    """Learned allocation (Maziarz et al.); see the module docstring for every option."""
    net = build_network(core, network, n_components, network_options, components)
    return GumbelMatrix(net, n_tasks, seed=seed, p_init=p_init,
                        temperature=TemperatureSchedule(temperature_initial, temperature_floor),
                        budget=budget, budget_weight=budget_weight, eval_sampling=eval_sampling,
                        arch_lr_multiplier=arch_lr_multiplier, dropout=core.dropout, execution=execution,
                        task_chunk=task_chunk, inactive_no_grad=inactive_no_grad,
                        keep_one_component=keep_one_component)


@register_scheme("shared_bottom", check=check_modular_options)
def build_shared_bottom(core: CoreSpec, n_tasks: int, *, seed: int = 0, network: Literal[NETWORKS] = "core",
                        n_components: Annotated[int | None, AT_LEAST_ONE] = None,
                        network_options: dict[str, Any] | None = None,
                        execution: Literal[EXECUTIONS] = "auto", task_chunk: Annotated[int, AT_LEAST_ONE] = 1,
                        components: list | None = None) -> FixedAllocation:
    """Every task uses every component of every modular layer."""
    net = build_network(core, network, n_components, network_options, components)
    alloc = [torch.ones(n_tasks, c) for c in net.components_per_layer]
    return FixedAllocation(net, n_tasks, alloc, "shared_bottom", dropout=core.dropout, execution=execution,
                           task_chunk=task_chunk, inactive_no_grad=False)


@register_scheme("no_sharing", check=check_modular_options)
def build_no_sharing(core: CoreSpec, n_tasks: int, *, seed: int = 0, network: Literal[NETWORKS] = "core",
                     n_components: Annotated[int | None, AT_LEAST_ONE] = None,
                     network_options: dict[str, Any] | None = None,
                     execution: Literal[EXECUTIONS] = "auto", task_chunk: Annotated[int, AT_LEAST_ONE] = 1,
                     components: list | None = None) -> FixedAllocation:
    """Task i uses only its own components (component i when T = C) in every layer; needs T <= C."""
    net = build_network(core, network, n_components, network_options, components)
    alloc = [no_sharing_allocation(n_tasks, c) for c in net.components_per_layer]
    return FixedAllocation(net, n_tasks, alloc, "no_sharing", dropout=core.dropout, execution=execution,
                           task_chunk=task_chunk, inactive_no_grad=False)
