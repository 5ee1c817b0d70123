"""Optional metric loggers the trainer calls with every evaluation record.

TensorBoard (``--tensorboard``) uses ``torch.utils.tensorboard``, which needs the separate
``tensorboard`` package; it is never required: without it, asking for it is a clear error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sharewise.errors import ConfigError


class TensorBoardLogger:
    """Scalars under ``run_dir/tensorboard``: losses, mean errors, per-task test metrics, scheme
    metrics. ``purge_step`` (a resumed run's first step) drops events a killed process logged
    after its checkpoint, as ``metrics.jsonl`` is truncated."""

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "--tensorboard needs the 'tensorboard' package, which is not installed; install it "
                "(pip install tensorboard) or run without --tensorboard (metrics.jsonl and the "
                "report hold the same numbers)"
            ) from None
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def log(self, record: dict[str, Any]) -> None:
        step = record["step"]
        for key in ("train_loss", "val_loss", "mean_val_error", "mean_test_error", "mean_test_loss"):
            if record.get(key) is not None:
                self.writer.add_scalar(key, record[key], step)
        for split in ("val", "test"):
            for task, metrics in record.get(split, {}).items():
                for name, value in metrics.items():
                    self.writer.add_scalar(f"{split}/{task}/{name}", value, step)
        for name, value in record.get("scheme", {}).items():
            self.writer.add_scalar(f"scheme/{name}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
