"""``scripts/notebook_bootstrap.py`` loaded as a module for the tests (``scripts/`` is not a package)."""

import importlib.util
from pathlib import Path

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "notebook_bootstrap.py"
_spec = importlib.util.spec_from_file_location("notebook_bootstrap", _SCRIPT)
nbb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nbb)
