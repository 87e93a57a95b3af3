"""Which notebook outputs depend on the CPU's numerics, and by how much?

Executes the notebooks once per numerics setting of PyTorch's CPU backend (the vector instruction
set ATen, oneDNN and MKL may use, and the thread count) and lists every code cell whose text
output is not the same in all of them, with the differing lines side by side. Those cells are the
ones whose digits nbval must not compare: their results are asserted with a tolerance instead
(see README, "Notebook outputs on other machines"), and the spread printed here is what the
tolerance must cover.

    python scripts/numerics_spread.py notebooks/q4_training_problems.ipynb --out /tmp/spread
    python scripts/numerics_spread.py --settings native avx2-1t --out /tmp/spread   # every notebook

A setting only takes effect when the process starts, so each notebook runs in a fresh kernel whose
environment carries it. Executed copies are kept in ``--out/<setting>/`` for a closer look.

``--exec SETTING -- COMMAND`` runs any command under one setting instead; CI uses it to run nbval a
second time (``make nbval NUMERICS=generic-1t``).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import time
from pathlib import Path

# Each setting is the environment of a fresh kernel. An instruction set can only be lowered below what
# the CPU has, never raised, and ATen's 'default' (no SIMD) is below every x86 CPU's, so 'generic-1t'
# computes differently from 'native' on any machine. (Measured on an AVX-512 Xeon: MKL's and oneDNN's
# AVX2 kernels gave the same sums as their AVX-512 ones; ATen's scalar kernels did not.)
SETTINGS: dict[str, dict[str, str]] = {
    "native": {},
    "generic-1t": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                   "OMP_NUM_THREADS": "1"},
    "avx2-1t": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                "OMP_NUM_THREADS": "1"},
    "scalar-2t": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                  "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "OMP_NUM_THREADS": "2"},
    "native-3t": {"OMP_NUM_THREADS": "3"},
}

REPO = Path(__file__).resolve().parents[1]


def execute(notebook: Path, env: dict[str, str], out: Path) -> float:
    """Run ``notebook`` in a kernel started with ``env`` added; write the executed copy to ``out``."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()
        seconds = time.perf_counter() - t0
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return seconds


def cell_texts(path: Path) -> dict[int, str]:
    """``{cell index: its text outputs joined}`` for every code cell (images are not compared)."""
    cells = json.loads(path.read_text())["cells"]
    texts = {}
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        parts = []
        for o in cell.get("outputs", []):
            if "text" in o:
                parts.append("".join(o["text"]))
            elif "text/plain" in o.get("data", {}) and "image/png" not in o["data"]:
                parts.append("".join(o["data"]["text/plain"]))
        texts[i] = "".join(parts)
    return texts


def report(notebook: Path, runs: dict[str, Path]) -> list[int]:
    """Print the cells whose outputs differ between the runs (the first is the reference); return their indices."""
    texts = {name: cell_texts(path) for name, path in runs.items()}
    first = next(iter(texts))
    differing = []
    for i, ref in texts[first].items():
        others = {name: t[i] for name, t in texts.items() if t[i] != ref}
        if not others:
            continue
        differing.append(i)
        print(f"\n--- {notebook.name} cell {i}: differs in {', '.join(others)} (vs {first})")
        for name, text in others.items():
            for line in difflib.unified_diff(ref.splitlines(), text.splitlines(), first, name, n=0, lineterm=""):
                if not line.startswith("@@"):
                    print("   ", line)
    return differing


def exec_under(setting: str, command: list[str]) -> int:
    """Replace this process by ``command`` with ``setting``'s environment added."""
    if setting not in SETTINGS:
        raise SystemExit(f"unknown numerics setting {setting!r}; choose one of {list(SETTINGS)}")
    if not command:
        raise SystemExit("usage: numerics_spread.py --exec SETTING -- COMMAND [ARGS...]")
    env = {**os.environ, **SETTINGS[setting]}
    print(f"[numerics] {setting}: {' '.join(f'{k}={v}' for k, v in SETTINGS[setting].items()) or 'as the machine is'}",
          file=sys.stderr)
    os.execvpe(command[0], command, env)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--exec"]:
        rest = argv[2:]
        return exec_under(argv[1] if len(argv) > 1 else "", rest[1:] if rest[:1] == ["--"] else rest)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--out", type=Path, required=True, help="folder for the executed copies")
    args = p.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO / "notebooks").glob("*.ipynb"))
    unstable = {}
    for nb in notebooks:
        runs = {"committed": nb}  # the outputs nbval compares against
        for name in args.settings:
            runs[name] = args.out / name / nb.name
            if not runs[name].exists():  # keep earlier runs: a setting is re-run only when its copy is deleted
                seconds = execute(nb.resolve(), SETTINGS[name], runs[name])
                print(f"{nb.name} under {name}: {seconds:.0f} s", file=sys.stderr)
        unstable[nb.name] = report(nb, runs)
    print("\ncells whose text output depends on the numerics:")
    for name, cells in unstable.items():
        print(f"  {name}: {cells or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
