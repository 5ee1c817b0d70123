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


def test_logger_writes_scalars_when_installed(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    logger = TensorBoardLogger(tmp_path)
    logger.log({"step": 1, "train_loss": 0.5, "test": {"iris": {"error": 0.1}}, "scheme": {"t": 1.0}})
    logger.close()
    assert any(tmp_path.iterdir())
