"""Interleaved timing of several training steps, the measurement the step benchmarks share.

The variants run round-robin (round 1: A, B, C; round 2: A, B, C; ...) so that a burst of load
from other processes on a shared machine hits every variant alike; each round times ``block``
calls of one variant. Callers take the median over rounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping


def interleaved_seconds(steps: Mapping[Hashable, Callable[[], object]], rounds: int, block: int,
                        warmup: int = 1) -> dict[Hashable, list[float]]:
    """Seconds per call of every step, one sample per round (``block`` calls each), after
    ``warmup`` untimed calls of each (oneDNN primitives, allocator, optimiser state)."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    samples: dict[Hashable, list[float]] = {key: [] for key in steps}
    for _ in range(rounds):
        for key, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(block):
                step()
            samples[key].append((time.perf_counter() - t0) / block)
    return samples
