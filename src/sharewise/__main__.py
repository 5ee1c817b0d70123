"""``python -m sharewise`` (also what ``torchrun -m sharewise`` runs)."""

import sys

from sharewise.cli.main import main

sys.exit(main())
