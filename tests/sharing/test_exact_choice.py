"""The measured choice between implementations of one op: only exact ones are eligible."""

from __future__ import annotations

import time

import torch

from sharewise.sharing import _exact_choice
from sharewise.sharing._exact_choice import exact_fastest
from sharewise.sharing._soft_mix import _mix, _outer


def test_an_inexact_candidate_is_never_chosen_however_fast() -> None:
    x = torch.randn(50)

    def slow_reference() -> torch.Tensor:
        time.sleep(0.002)
        return x * 2

    candidates = {"reference": slow_reference, "fast_but_off": lambda: x * 2 + 1e-7, "fast_exact": lambda: x + x}
    assert exact_fastest(("test", "inexact"), candidates, torch.device("cpu")) == "fast_exact"
    only_inexact = {"reference": slow_reference, "fast_but_off": lambda: x * 2 + 1e-7}
    assert exact_fastest(("test", "only_inexact"), only_inexact, torch.device("cpu")) == "reference"


def test_the_choice_is_made_once_per_key_and_not_timed_off_the_cpu() -> None:
    calls = []

    def counted() -> torch.Tensor:
        calls.append(1)
        return torch.ones(3)

    key = ("test", "once")
    first = exact_fastest(key, {"a": counted, "b": counted}, torch.device("cpu"))
    n = len(calls)
    assert exact_fastest(key, {"a": counted, "b": counted}, torch.device("cpu")) == first and len(calls) == n
    assert _exact_choice.chosen()[key] == first

    def never() -> torch.Tensor:
        raise AssertionError("a candidate ran on a non-CPU device")

    assert exact_fastest(("test", "meta"), {"ref": never, "other": never}, torch.device("meta")) == "ref"


def test_soft_mix_ops_equal_their_bmm_reference_bit_for_bit() -> None:
    """Whichever implementation was chosen, the mix and the outer product give bmm's values."""
    torch.manual_seed(0)
    for t, m, n in [(10, 4096, 4), (3, 40, 5)]:
        masked, s = torch.randn(t, m, n).clamp_min(0), torch.randn(t, n, 1)
        grad = torch.randn(t, m, 1)
        assert torch.equal(_mix(masked, s), torch.bmm(masked, s))
        assert torch.equal(_outer(grad, s.transpose(1, 2)), torch.bmm(grad, s.transpose(1, 2)))
    chosen = _exact_choice.chosen()
    assert ("soft_mix", 10, 4096, 4, torch.float32) in chosen  # the choice was made, and recorded
