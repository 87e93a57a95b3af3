"""The practice pages: the drills page covers every spot-the-bug item of the library, without
giving the answer away; the flash cards cover every question and follow-up, answers folded.

The pages' rendering (and every link in them) is checked by the book build with -W and by
tests/browser/check_book.py; here, what a build cannot know: whether a drill is missing.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

from imagegen_lib.practice import drills, reference_answers

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "book" / "_ext"))
from drill_snippets import strip_bug_markers  # noqa: E402

DRILLS_PAGE = (REPO / "book" / "drills.md").read_text(encoding="utf-8")


def included_objects(page: str) -> set[str]:
    """``:pyobject:`` targets of the page's drill-snippet / literalinclude directives."""
    return set(re.findall(r"^:pyobject:\s*(\S+)", page, re.M))


def test_every_drill_of_the_library_is_on_the_drills_page():
    wanted = {fn.__name__ for fn in drills.DRILLS.values()}
    # Every buggy reference answer too (Exercise B's will join SoftmaxMLPGenerator here).
    wanted |= {name for name in reference_answers.__all__}
    on_page = {name.split(".")[0] for name in included_objects(DRILLS_PAGE)}
    assert wanted <= on_page, f"drills missing from book/drills.md: {sorted(wanted - on_page)}"


def test_drill_snippets_come_from_the_library_and_every_pyobject_exists():
    from imagegen_lib.gan import train

    for target in included_objects(DRILLS_PAGE):
        owner = target.split(".")[0]
        assert any(hasattr(m, owner) for m in (drills, reference_answers, train)), \
            f"book/drills.md includes {target}, which the library does not define"


def test_bug_markers_are_stripped_and_nothing_else():
    for fn in drills.DRILLS.values():
        source = inspect.getsource(fn)
        shown = strip_bug_markers(source)
        assert "BUG" not in shown and "fixed" not in shown, fn.__name__
        # only trailing comments went: the code itself is intact, line for line
        assert len(source.splitlines()) == len(shown.splitlines())
        for before, after in zip(source.splitlines(), shown.splitlines()):
            assert before == after or (before.startswith(after)
                                       and before[len(after):].lstrip().startswith("#"))
    init = strip_bug_markers(inspect.getsource(reference_answers.SoftmaxMLPGenerator.__init__))
    assert "nn.Softmax(dim=1)," in init and "bug" not in init.lower()
    # ordinary comments stay
    assert strip_bug_markers("x = f(y)  # (N, 2) -> (N,)\n") == "x = f(y)  # (N, 2) -> (N,)\n"


def test_flash_cards_hold_every_question_and_follow_up_with_hidden_answers():
    from imagegen_lib.practice.interview import chapter_names, load_chapter

    page = (REPO / "book" / "flashcards.md").read_text(encoding="utf-8")
    chapters = [load_chapter(n, REPO / "book" / "interview") for n in chapter_names(REPO / "book" / "interview")]
    assert re.findall(r"^## (Q\d)", page, re.M) == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    assert page.count(":::{dropdown} The 30-second answer") == sum(c.short_answer is not None for c in chapters) == 7
    assert page.count(":::{dropdown} Short answer") == sum(len(c.follow_ups) for c in chapters)


def test_the_bibliography_parses_and_every_key_is_unique():
    """A missing brace breaks the whole book build (sphinxcontrib-bibtex); catch it with the unit tests."""
    from pybtex.database import parse_file

    bib = REPO / "book" / "references.bib"
    keys = re.findall(r"^@\w+\{([^,]+),", bib.read_text(encoding="utf-8"), re.M)
    assert len(parse_file(str(bib)).entries) == len(keys) == len(set(keys))
