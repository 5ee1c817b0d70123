"""TensorBoard is optional: asking for it without the package is a clear error, never a crash."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sharewise.cli.main import main
from sharewise.errors import ConfigError
from sharewise.training.loggers import TensorBoardLogger


@pytest.fixture
def no_tensorboard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail


def test_missing_package_is_a_clear_error(no_tensorboard: None, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs the 'tensorboard' package.*pip install tensorboard"):
        TensorBoardLogger(tmp_path)


def test_cli_flag_without_package_exits_2_before_writing(no_tensorboard: None, tmp_path: Path, tiny: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny(steps=2)))
    code = main(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "--tensorboard"])
    assert code == 2
    assert "pip install tensorboard" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


class _FakeWriter:
    """Stands in for torch.utils.tensorboard.SummaryWriter (tensorboard is optional, not a test dependency)."""

    def __init__(self, log_dir: str, purge_step: int | None = None) -> None:
        self.log_dir, self.purge_step, self.scalars, self.closed = log_dir, purge_step, [], False

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))

    def flush(self) -> None:
        self.flushes = getattr(self, "flushes", 0) + 1

    def close(self) -> None:
        self.closed = True


def test_logger_writes_one_scalar_per_metric(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import types

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = _FakeWriter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    logger = TensorBoardLogger(tmp_path, purge_step=7)
    logger.log({"step": 8, "train_loss": 0.5, "test": {"iris": {"error": 0.1}}, "scheme": {"t": 1.0}})
    logger.close()
    writer = logger.writer
    assert writer.purge_step == 7 and writer.log_dir == str(tmp_path) and writer.closed
    assert ("train_loss", 0.5, 8) in writer.scalars
    assert ("test/iris/error", 0.1, 8) in writer.scalars
    assert ("scheme/t", 1.0, 8) in writer.scalars
