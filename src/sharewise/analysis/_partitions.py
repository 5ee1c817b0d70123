"""Private set-partition helpers for the tree search (index form only).

A partition is a tuple of groups, each group a sorted tuple of task indices; groups are sorted
by their first element. This canonical form makes partitions hashable and comparable, which the
searches use for de-duplication and deterministic tie-breaking.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

Group = tuple[int, ...]
Partition = tuple[Group, ...]


def canonical(groups: Sequence[Sequence[int]]) -> Partition:
    """Sort each group and the groups (by their smallest element)."""
    return tuple(sorted(tuple(sorted(g)) for g in groups))


def set_partitions(items: Sequence[T]) -> Iterator[list[list[T]]]:
    """All set partitions of ``items`` (Bell(n) of them), each a list of blocks.

    Recursive: every partition of ``items[1:]`` either gets ``items[0]`` added to one of its
    blocks or as a new singleton block.
    """
    if len(items) == 0:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in set_partitions(rest):
        yield [[first], *partition]
        for i in range(len(partition)):
            yield [*partition[:i], [first, *partition[i]], *partition[i + 1 :]]


def refinements(partition: Partition) -> Iterator[Partition]:
    """Every partition that refines ``partition`` (each group split independently)."""

    def product(index: int) -> Iterator[list[Group]]:
        if index == len(partition):
            yield []
            return
        for split in set_partitions(list(partition[index])):
            for rest in product(index + 1):
                yield [tuple(block) for block in split] + rest

    for groups in product(0):
        yield canonical(groups)


def coarsenings(partition: Partition) -> Iterator[Partition]:
    """Every partition of which ``partition`` is a refinement (its groups merged in any way)."""
    for merge in set_partitions(list(partition)):
        yield canonical([sum(block, ()) for block in merge])
