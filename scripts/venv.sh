#!/usr/bin/env bash
# Prints the path of a ready virtual environment for this clone, creating it if needed.
#
# The venv lives outside the repo, keyed on the hash of requirements.txt + pyproject.toml, so a
# second clone (or CI on the same machine) reuses it: cold ~2-3 min, warm a few seconds. The
# editable install is re-pointed at *this* clone on every call, so `imagegen` and
# `import imagegen_lib` always run the code you are looking at.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
key=$(cat "$root/requirements.txt" "$root/pyproject.toml" | sha256sum | cut -c1-12)
cache=${IMAGEGEN_CACHE:-$HOME/.cache/imagegen}
venv="$cache/venv-$key"
mkdir -p "$cache"
# One creator at a time: a second `make` started meanwhile waits here instead of racing it.
exec 9>"$venv.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  echo "[venv] creating $venv (first run: ~3 min)" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$root/requirements.txt" >&2
  touch "$venv/.complete"
fi
# Re-point the editable install at this clone (cheap; no dependency resolution).
# (Asked from / so that the answer comes from the install, not from a checkout in the cwd.)
installed=$(cd / && "$venv/bin/python" -c 'import imagegen_lib, os; print(os.path.dirname(os.path.dirname(imagegen_lib.__file__)))' 2>/dev/null || true)
if [ "$installed" != "$root" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$root" >&2
fi
flock -u 9
echo "$venv"
