#!/usr/bin/env python3
"""Render book/interview/<chapter>.yml into its notebook (the answer cell, every follow-up block) and
into book/flashcards.md. --check: exit 1 listing what is out of date, write nothing.

Run after editing an interview file:  python scripts/render_interview.py --write
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from imagegen_lib.practice.interview import (  # noqa: E402
    InterviewDataError, chapter_names, follow_up_blocks, load_chapter, render_answer_cell, render_flash_cards,
    render_into_markdown)

INTERVIEW_DIR = REPO / "book" / "interview"
FLASH_CARDS = REPO / "book" / "flashcards.md"


def rendered_notebook(name: str) -> tuple[Path, str, str]:
    """(path, text now, text after rendering) of one chapter's notebook."""
    chapter = load_chapter(name, INTERVIEW_DIR)
    path = REPO / "notebooks" / f"{name}.ipynb"
    before = path.read_text(encoding="utf-8")
    nb = nbformat.reads(before, as_version=4)
    answer_cells = [c for c in nb.cells if c.metadata.get("interview") == "answer"]
    if len(answer_cells) != 1:
        raise InterviewDataError(f"{path}: expected one markdown cell with metadata interview: answer, "
                                 f"found {len(answer_cells)}")
    answer_cells[0].source = render_answer_cell(chapter)
    found = set()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found |= set(follow_up_blocks(cell.source))
            cell.source = render_into_markdown(chapter, cell.source)
    wanted = {chapter.label(f) for f in chapter.follow_ups}
    if wanted - found:
        raise InterviewDataError(f"{path}: no block for follow-ups {sorted(wanted - found)}: add an admonition "
                                 "with ':name: <label>' where each belongs (its text is then rendered)")
    return path, before, nbformat.writes(nb) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = parser.parse_args()
    names = sorted(chapter_names(INTERVIEW_DIR), key=lambda n: (n.startswith("exercise"), n))  # book order
    outputs = [rendered_notebook(n) for n in names]
    cards = render_flash_cards([load_chapter(n, INTERVIEW_DIR) for n in names])
    outputs.append((FLASH_CARDS, FLASH_CARDS.read_text(encoding="utf-8") if FLASH_CARDS.exists() else "", cards))
    stale = [path for path, before, after in outputs if before != after]
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(REPO)} (run: python scripts/render_interview.py --write)")
        return 1 if stale else 0
    for path, _, after in outputs:
        if path in stale:
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(after, encoding="utf-8")
            tmp.replace(path)
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
