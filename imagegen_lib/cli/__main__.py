"""``python -m imagegen_lib.cli ...``: the ``imagegen`` command without its console script
(``make data``, and ``torchrun -m imagegen_lib.cli train ...``, which starts modules, not scripts)."""

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
