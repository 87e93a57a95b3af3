#!/usr/bin/env python3
"""Append (or refresh) a chapter's self-check quiz cell without re-executing the chapter.

    python scripts/add_quiz_cell.py notebooks/q1_what_is_a_gan.ipynb [--chapter NAME]

The quiz of notebook ``notebooks/NAME.ipynb`` is the bank ``book/quizzes/NAME.yml`` (see
:mod:`imagegen_lib.practice.quiz`). If the notebook has no quiz cell yet, this appends two cells, exactly
like Exercise A's last two: a "## N. Check yourself" heading (N = the next section number) and a
code cell tagged ``remove-input`` holding ``load_quiz("NAME")``. It then executes *only that
cell* in a fresh kernel started in the notebook's folder (as nbval and the book do), stores its
outputs, and merges the widget models it created into ``metadata.widgets`` (replacing the models
of the cell's previous output, keeping every other widget's state).

Run it again after editing a bank: the quiz's HTML output embeds the questions, so nbval (and the
book built with EXECUTE=off) need the cell's stored output to match the bank.
"""

from __future__ import annotations

import argparse
import re
import sys
import uuid
from pathlib import Path

import nbformat
from nbclient import NotebookClient

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NUMBER_WORDS = {8: "Eight", 9: "Nine", 10: "Ten", 11: "Eleven", 12: "Twelve", 13: "Thirteen",
                14: "Fourteen", 15: "Fifteen", 16: "Sixteen"}


def quiz_source(chapter: str) -> str:
    return f'from imagegen_lib.practice.quiz import load_quiz\nload_quiz("{chapter}")'


def find_quiz_cell(nb, chapter: str) -> int | None:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and f'load_quiz("{chapter}")' in cell.source:
            return i
    return None


def next_section_number(nb) -> int:
    numbers = [int(m.group(1)) for cell in nb.cells if cell.cell_type == "markdown"
               for m in re.finditer(r"^##\s+(\d+)\.", cell.source, re.M)]
    return max(numbers, default=0) + 1


def heading_cell(nb, n_questions: int):
    count = NUMBER_WORDS.get(n_questions, str(n_questions))
    return nbformat.v4.new_markdown_cell(
        f"## {next_section_number(nb)}. Check yourself\n\n"
        f"{count} questions on this chapter. In the book they are graded right here in the page; "
        "in JupyterLab the same quiz is a widget graded by the kernel.",
        id=uuid.uuid4().hex[:8])


def run_alone(source: str, folder: Path, metadata: dict):
    """Execute one code cell in a fresh kernel with cwd=folder; return (cell, widget state)."""
    scratch = nbformat.v4.new_notebook(metadata=metadata)
    scratch.cells = [nbformat.v4.new_code_cell(source)]
    NotebookClient(scratch, timeout=120, kernel_name="python3", record_timing=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    cell = scratch.cells[0]
    errors = [o for o in cell.outputs if o.output_type == "error"]
    if errors:
        raise SystemExit(f"the quiz cell failed: {errors[0].ename}: {errors[0].evalue}")
    state = scratch.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    return cell, state


def referenced_models(outputs, state: dict) -> set[str]:
    """Model ids an output displays, plus every model they reference (layouts, children)."""
    todo = [o.data[WIDGET_VIEW]["model_id"] for o in outputs
            if "data" in o and WIDGET_VIEW in o.data]
    seen: set[str] = set()
    while todo:
        mid = todo.pop()
        if mid in seen or mid not in state:
            continue
        seen.add(mid)
        todo += re.findall(r"IPY_MODEL_([0-9a-f]+)", str(state[mid]))
    return seen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebook", type=Path)
    ap.add_argument("--chapter", help="bank name (default: the notebook's file name)")
    args = ap.parse_args(argv)
    chapter = args.chapter or args.notebook.stem

    from imagegen_lib.practice.quiz import load_quiz
    quiz = load_quiz(chapter)  # a malformed bank stops here, naming file and question

    nb = nbformat.read(args.notebook, as_version=4)
    index = find_quiz_cell(nb, chapter)
    if index is None:
        nb.cells.append(heading_cell(nb, len(quiz)))
        nb.cells.append(nbformat.v4.new_code_cell(quiz_source(chapter), id=uuid.uuid4().hex[:8],
                                                  metadata={"tags": ["remove-input"]}))
        index = len(nb.cells) - 1
        action = "appended"
    else:
        action = "refreshed"
    target = nb.cells[index]

    ran, new_state = run_alone(target.source, args.notebook.parent.resolve(),
                               {k: v for k, v in nb.metadata.items() if k != "widgets"})
    widgets = nb.metadata.setdefault("widgets", {}).setdefault(
        WIDGET_STATE, {"state": {}, "version_major": 2, "version_minor": 0})
    for mid in referenced_models(target.get("outputs", []), widgets["state"]):
        del widgets["state"][mid]
    widgets["state"].update(new_state)

    counts = [c.execution_count for c in nb.cells[:index]
              if c.cell_type == "code" and c.execution_count]
    target.outputs = ran.outputs
    for out in target.outputs:
        if "execution_count" in out:
            out["execution_count"] = max(counts, default=0) + 1
    target.execution_count = max(counts, default=0) + 1
    target.metadata["execution"] = ran.metadata.get("execution", {})
    nbformat.validate(nb)
    nbformat.write(nb, args.notebook)
    print(f"{args.notebook}: {action} the quiz cell ({len(quiz)} questions, "
          f"{len(new_state)} widget model(s) stored)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
