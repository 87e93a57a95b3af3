"""Split notebooks into N groups of about equal run time, one group per output line.

    python scripts/nbval_groups.py 2 notebooks/*.ipynb

The run time of a notebook is what its committed outputs recorded (each code cell's execution
start and end in its metadata, as Jupyter and nbclient write them); a notebook without those counts
as 60 s. Longest first, each into the group with the least time so far. ``make nbval NBVAL_JOBS=2``
runs one nbval process per group side by side: worth it where every kernel has one thread
(``NUMERICS=generic-1t``) on a machine with at least two cores.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

UNKNOWN_SECONDS = 60.0


def recorded_seconds(path: Path) -> float:
    total, timed = 0.0, False
    for cell in json.loads(path.read_text())["cells"]:
        times = cell.get("metadata", {}).get("execution", {})
        start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
        if start and end:
            total += (datetime.fromisoformat(end.replace("Z", "+00:00"))
                      - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            timed = True
    return total if timed else UNKNOWN_SECONDS


def groups(paths: list[Path], n: int) -> list[list[Path]]:
    loads = [(0.0, i, []) for i in range(max(1, n))]
    for seconds, path in sorted(((recorded_seconds(p), p) for p in paths), key=lambda t: (-t[0], str(t[1]))):
        load, i, members = min(loads)
        loads[i] = (load + seconds, i, members + [path])
    return [sorted(members) for _, _, members in sorted(loads, key=lambda t: t[1]) if members]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    for group in groups([Path(a) for a in argv[1:]], int(argv[0])):
        print(" ".join(str(p) for p in group))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
