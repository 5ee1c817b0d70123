"""The progress line: quiet when stderr is not a terminal, steps/s and ETA when enabled."""

from __future__ import annotations

import pytest

from sharewise.training.progress import ProgressBar, track


def test_quiet_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(track(range(5), "work")) == [0, 1, 2, 3, 4]
    ProgressBar(10)(10, 10, 0.5)
    assert capsys.readouterr().err == ""


def test_enabled_bar_shows_rate_eta_and_loss(capsys: pytest.CaptureFixture[str]) -> None:
    bar = ProgressBar(10, label="train", initial=4, enabled=True)
    bar(10, 10, 0.25)
    bar.close()
    err = capsys.readouterr().err
    assert "train [########################] 10/10" in err and "it/s ETA 0s loss 0.2500" in err
    assert list(track(iter("ab"), "letters", total=2, enabled=True)) == ["a", "b"]
    assert "letters" in capsys.readouterr().err
