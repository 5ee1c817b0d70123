"""Real-data loaders: MNIST IDX, UCI-10, user CSV tasks, Omniglot; seeded splits and scaling."""

from sharewise.data.csv_tasks import CsvTable, load_csv_folder, load_csv_task
from sharewise.data.idx import load_mnist, read_idx
from sharewise.data.omniglot import (
    OMNIGLOT_PAPER_ORDER,
    OmniglotAlphabet,
    OmniglotData,
    alphabet_seed,
    load_omniglot,
    omniglot_split,
)
from sharewise.data.splits import fixed_split, minmax_scale
from sharewise.data.uci import UCI10_NAMES, UciTable, load_uci, load_uci10

__all__ = [
    "OMNIGLOT_PAPER_ORDER",
    "UCI10_NAMES",
    "CsvTable",
    "OmniglotAlphabet",
    "OmniglotData",
    "UciTable",
    "alphabet_seed",
    "fixed_split",
    "load_csv_folder",
    "load_csv_task",
    "load_mnist",
    "load_omniglot",
    "load_uci",
    "load_uci10",
    "minmax_scale",
    "omniglot_split",
    "read_idx",
]
