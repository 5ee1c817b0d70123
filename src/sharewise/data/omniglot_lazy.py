"""Omniglot alphabets read lazily, image by image, from the official zips (a streamed task set).

The same files, order, labels, split and pixels as :func:`sharewise.data.omniglot.load_omniglot`
(this module reuses its index and decoder), but nothing is decoded until a DataLoader worker asks
for an image: the example of a data set that need not fit in memory. Each process opens its own
handle on the zip (a handle shared across forked workers would interleave their reads).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from sharewise.data._omniglot_source import AlphabetIndex
from sharewise.data.omniglot import _decode, rescale_pixels


class OmniglotImages(Dataset):
    """Images ``members`` of one alphabet: item ``i`` is ``(x [1, S, S] float32, label int)``, pixel
    values as :func:`~sharewise.data.omniglot.rescale_pixels` gives them."""

    def __init__(self, index: AlphabetIndex, members: list[str], labels: np.ndarray, image_size: int | None,
                 pixel_max: float = 1.0, white_background: bool = False) -> None:
        self.where, self.members, self.labels, self.image_size = index.where, members, labels, image_size
        self.pixel_max, self.white_background = pixel_max, white_background
        self._zip_path = index.where if index.where.endswith(".zip") else None
        self._zip: zipfile.ZipFile | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.members)

    def _read(self, member: str) -> bytes:
        if self._zip_path is None:
            return Path(member).read_bytes()
        if self._zip is None or self._pid != os.getpid():  # first use in this process
            self._zip, self._pid = zipfile.ZipFile(self._zip_path), os.getpid()
        return self._zip.read(member)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        member = self.members[i]
        img = _decode(self._read(member), f"{member} in {self.where}", self.image_size)  # [S, S]
        x = rescale_pixels(torch.from_numpy(img).unsqueeze(0), self.pixel_max, self.white_background)
        return x, int(self.labels[i])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_zip"], state["_pid"] = None, -1  # never pickle an open handle into a worker
        return state
