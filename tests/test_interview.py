"""The interview answers as data (book/interview/*.yml): every answer fits its time, every question is
tagged, and the chapters and the flash-cards page show exactly what the data says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from imagegen_lib.practice.interview import (
    InterviewDataError, WORD_LIMITS, chapter_names, count_words, follow_up_blocks, load_chapter, over_budget,
    render_follow_up)

REPO = Path(__file__).resolve().parents[1]
DIR = REPO / "book" / "interview"
NAMES = chapter_names(DIR)


def test_every_chapter_has_an_interview_file():
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    assert NAMES == notebooks


@pytest.mark.parametrize("name", NAMES)
def test_answers_fit_their_time(name):
    chapter = load_chapter(name, DIR)
    assert over_budget(chapter) == []
    if name.startswith("q"):
        assert chapter.short_answer and chapter.long_answer, f"{name}: a question needs both answers"
    assert chapter.follow_ups, f"{name}: no follow-ups"
    assert "TODO" not in repr(chapter)


def test_rendered_copies_match_the_data():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "render_interview.py"), "--check"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_word_count_rules():
    assert count_words("The generator maps noise to an image.") == 7
    assert count_words("**bold** *emph* `code` — and") == 4  # markup is not a word; a dash is not
    assert count_words("as shown {cite}`goodfellow2014gan` and {cite:p}`x`") == 3  # citations are not said
    assert count_words("a {term}`FID` b") == 3
    assert count_words(r"the loss $-\log D(G(z))$ here") == 3 + 4  # log, D, G, z
    assert count_words(r"$p_\text{data}(x)$") == 3
    assert count_words("see [the paper](https://example.org/x)") == 3


def test_limits_are_what_one_says_in_the_time():
    assert WORD_LIMITS == {"short_answer": 80, "long_answer": 300, "follow_up": 50}


def test_bad_data_is_refused_with_a_reason(tmp_path):
    (tmp_path / "x.yml").write_text("title: T\nquestion: Q\ndifficulty: 4\nfrequency: 1\nfollow_ups: []\n")
    with pytest.raises(InterviewDataError, match="'difficulty' must be 1, 2 or 3, got 4"):
        load_chapter("x", tmp_path)
    (tmp_path / "y.yml").write_text("title: T\nquestion: Q\ndifficulty: 1\nfrequency: 1\nshort_answer: s\n")
    with pytest.raises(InterviewDataError, match="both the 30-second and the 2-minute answer"):
        load_chapter("y", tmp_path)
    (tmp_path / "z.yml").write_text("title: T\nquestion: Q\ndifficulty: 1\nfrequency: 1\nanswer: s\n")
    with pytest.raises(InterviewDataError, match="unknown keys"):
        load_chapter("z", tmp_path)


def test_a_rendered_block_is_found_again_with_its_label():
    chapter = load_chapter("q1_what_is_a_gan", DIR)
    follow_up = chapter.follow_ups[0]
    text = "before\n\n" + render_follow_up(chapter, follow_up) + "\n\nafter"
    blocks = follow_up_blocks(text)
    assert list(blocks) == [chapter.label(follow_up)]
    start, end = blocks[chapter.label(follow_up)]
    assert text.split("\n")[start].startswith("```{admonition}") and text.split("\n")[end - 1] == "```"
