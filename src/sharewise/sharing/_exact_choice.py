"""Pick the fastest of several implementations of one op, among those exact on this machine.

Small batched products such as soft ordering's mix (``[T, M, 4] @ [T, 4, 1]``) run through
different BLAS code paths on different CPUs: on one machine (session 3, issue 15) the mix's
outer product as a K=1 ``bmm`` was 3.4x faster than a broadcast multiply; on an AMD EPYC
(session 4) the broadcast multiply was 3.1x faster than the ``bmm``, and a loop of ``mv`` 3.6x
faster than the mix's ``bmm``. No fixed choice is right everywhere, so the choice is measured, once
per op and shape, at first use.

Timing is noisy, so a measured choice could differ between two runs on the same machine; to keep
results reproducible, only candidates whose output equals the reference candidate's *bit for bit*
(on these inputs) are eligible. Whichever of them wins, the op returns the reference's values, so
a run's numbers do not depend on the timing. Off the CPU the reference is used without timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping

import torch
from torch import Tensor

_CHOSEN: dict[Hashable, str] = {}


def exact_fastest(key: Hashable, candidates: Mapping[str, Callable[[], Tensor]], device: torch.device,
                  reps: int = 7) -> str:
    """The name of the fastest candidate whose result equals the first candidate's exactly
    (decided at the first call for ``key``, then cached); the first is the reference.

    Each eligible candidate is called twice to warm up (first calls pay one-off costs: 1.4 ms
    instead of 0.08 for a loop of ``mv``), then once per round for ``reps`` rounds, candidates
    alternating; its time is its fastest call (a burst of load on a shared machine only ever
    slows a call down, so the minimum is the steadiest estimate)."""
    chosen = _CHOSEN.get(key)
    if chosen is not None:
        return chosen
    names = list(candidates)
    if device.type != "cpu" or len(names) == 1:
        _CHOSEN[key] = names[0]
        return names[0]
    with torch.no_grad():
        reference = candidates[names[0]]()
        exact = [n for n in names if n == names[0] or torch.equal(candidates[n](), reference)]
        for name in exact:
            candidates[name]()
            candidates[name]()
        best = dict.fromkeys(exact, float("inf"))
        for _ in range(reps):
            for name in exact:
                t0 = time.perf_counter()
                candidates[name]()
                best[name] = min(best[name], time.perf_counter() - t0)
    _CHOSEN[key] = min(best, key=best.__getitem__)
    return _CHOSEN[key]


def chosen() -> dict[Hashable, str]:
    """What was chosen so far (for benchmarks and tests)."""
    return dict(_CHOSEN)
