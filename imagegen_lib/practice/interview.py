"""The interview answers as data: each chapter's question, its 30-second and 2-minute answers and its
follow-ups, with how hard each is and how often it is asked.

A file ``book/interview/<chapter>.yml`` holds one chapter::

    title: "Q1 — What is a GAN?"          # the chapter's page title
    question: "What is a generative ..."  # as an interviewer asks it
    difficulty: 1                         # 1 basic · 2 solid · 3 expert
    frequency: 3                          # 1 rare · 2 common · 3 almost always asked
    short_answer: |-                      # the 30-second answer: ≤ 80 spoken words
    long_answer: |-                       # the 2-minute answer: ≤ 300 spoken words
    follow_ups:
      - id: implicit-model                # the admonition's label: q1-implicit-model
        question: "Why is a GAN called ..."
        difficulty: 2
        frequency: 2
        short_answer: |-                  # ≤ 50 spoken words, said before any detail
        detail: |-                        # the rest, MyST markdown (optional)

Exercises have no 30-/2-minute answer (they are coding tasks); their follow-ups follow the same rules.

One source, three places: ``scripts/render_interview.py`` writes the chapter notebook's answer cell
and every follow-up block (found by its ``:name:`` label), and the flash-cards page. A unit test
fails when a rendered copy differs from the data, or an answer runs over its word budget.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

# What one can say in the time: ~150 spoken words a minute, less a little for breathing.
WORD_LIMITS = {"short_answer": 80, "long_answer": 300, "follow_up": 50}
LEVELS = {1, 2, 3}
DIFFICULTY_NAMES = {1: "basic", 2: "solid", 3: "expert"}
FREQUENCY_NAMES = {1: "asked rarely", 2: "asked often", 3: "almost always asked"}


class InterviewDataError(ValueError):
    """A chapter's interview file is malformed: the message names the file, the entry and the fix."""


@dataclass(frozen=True)
class FollowUp:
    id: str
    question: str
    difficulty: int
    frequency: int
    short_answer: str
    detail: str = ""


@dataclass(frozen=True)
class Chapter:
    name: str
    title: str
    question: str
    difficulty: int
    frequency: int
    short_answer: str | None
    long_answer: str | None
    follow_ups: tuple[FollowUp, ...]

    def label(self, follow_up: FollowUp) -> str:
        """The follow-up's label in the book (its admonition's ``:name:``): ``q1-<id>``, ``exercise-a-<id>``."""
        words = self.name.split("_")
        return "-".join(words[:2] if words[0] == "exercise" else words[:1]) + f"-{follow_up.id}"


# --- counting spoken words -------------------------------------------------------------------------

_ROLE = re.compile(r"\{(\w+)(?::\w+)?\}`([^`]*)`")
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$", re.S)
# Commands that only format (a font, a fraction bar, a bracket size) are not said; \log, \sigma are.
_SILENT_COMMAND = re.compile(r"\\(?:math[a-z]+|text|operatorname|left|right|[bB]igg?|[dt]?frac|sqrt|quad|[,;!])")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def _spoken_role(match: re.Match) -> str:
    """A citation or cross-reference is not said aloud; a term is said as its shown text."""
    role, target = match.group(1), match.group(2)
    if role in {"cite", "doc", "ref", "numref", "eq", "download"}:
        return " "
    return target.split("<")[0]


def _math_words(latex: str) -> int:
    """A formula costs one word per symbol group one would say (`-\\log D(x)`: log, D, x)."""
    return len(re.findall(r"[A-Za-z0-9]+", _SILENT_COMMAND.sub(" ", latex)))


def count_words(markdown: str) -> int:
    """How many words does saying this answer take?

    Text words are whitespace-separated tokens holding a letter or digit, after MyST markup is
    dropped (emphasis, code ticks, link targets); citations and cross-references count zero (nobody
    reads them out); a formula counts one word per symbol group (``\\mathrm{KL}(p_g \\| p)`` → KL,
    p, g, p: 4; formatting commands are silent, ``\\log`` is a word). At ~150 words a minute, 80 words is 30 seconds.
    """
    text = _ROLE.sub(_spoken_role, markdown)
    text = _LINK.sub(r"\1", text)
    math = 0
    for pattern in (_DISPLAY_MATH, _INLINE_MATH):
        math += sum(_math_words(m.group(1)) for m in pattern.finditer(text))
        text = pattern.sub(" ", text)
    return math + sum(1 for token in text.split() if re.search(r"[A-Za-z0-9]", token))


# --- loading ------------------------------------------------------------------------------------------

def interview_dir() -> Path:
    """Where the chapter files live: ``$IMAGEGEN_INTERVIEW_DIR``, else ``book/interview`` of the book."""
    if os.environ.get("IMAGEGEN_INTERVIEW_DIR"):
        return Path(os.environ["IMAGEGEN_INTERVIEW_DIR"])
    from imagegen_lib.core.paths import book_root
    return book_root() / "book" / "interview"


def _level(raw: dict, key: str, where: str) -> int:
    value = raw.get(key)
    if value not in LEVELS:
        raise InterviewDataError(f"{where}: '{key}' must be 1, 2 or 3, got {value!r}")
    return value


def _text(raw: dict, key: str, where: str, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InterviewDataError(f"{where}: '{key}' must be non-empty text")
    return value.strip()


def _check_keys(raw: dict, allowed: set[str], where: str) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise InterviewDataError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")


def _follow_up(raw: dict, where: str) -> FollowUp:
    _check_keys(raw, {"id", "question", "difficulty", "frequency", "short_answer", "detail"}, where)
    fid = raw.get("id")
    if not isinstance(fid, str) or not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", fid):
        raise InterviewDataError(f"{where}: 'id' must be lower-case words joined by '-', got {fid!r}")
    where = f"{where} ({fid})"
    return FollowUp(fid, _text(raw, "question", where), _level(raw, "difficulty", where),
                    _level(raw, "frequency", where), _text(raw, "short_answer", where),
                    _text(raw, "detail", where, required=False) or "")


def load_chapter(name: str, directory: str | os.PathLike | None = None) -> Chapter:
    """Read and check ``<directory>/<name>.yml`` (structure and levels; word budgets: `over_budget`)."""
    path = Path(directory or interview_dir()) / f"{name}.yml"
    if not path.is_file():
        raise FileNotFoundError(f"no interview file {path}: one YAML per chapter, named after its notebook")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    where = str(path)
    if not isinstance(raw, dict):
        raise InterviewDataError(f"{where}: expected a mapping at the top level")
    _check_keys(raw, {"title", "question", "difficulty", "frequency", "short_answer", "long_answer",
                      "follow_ups"}, where)
    follow_ups = tuple(_follow_up(f, f"{where} follow-up {i}") for i, f in enumerate(raw.get("follow_ups") or []))
    ids = [f.id for f in follow_ups]
    if len(set(ids)) != len(ids):
        raise InterviewDataError(f"{where}: follow-up ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
    short, long = _text(raw, "short_answer", where, False), _text(raw, "long_answer", where, False)
    if (short is None) != (long is None):
        raise InterviewDataError(f"{where}: give both the 30-second and the 2-minute answer, or neither")
    return Chapter(name, _text(raw, "title", where), _text(raw, "question", where),
                   _level(raw, "difficulty", where), _level(raw, "frequency", where), short, long, follow_ups)


def chapter_names(directory: str | os.PathLike | None = None) -> list[str]:
    return sorted(p.stem for p in Path(directory or interview_dir()).glob("*.yml"))


def over_budget(chapter: Chapter) -> list[str]:
    """Every answer of the chapter that is longer than one can say in its time, as readable lines."""
    problems = []
    for key, text in (("short_answer", chapter.short_answer), ("long_answer", chapter.long_answer)):
        if text is not None and count_words(text) > WORD_LIMITS[key]:
            problems.append(f"{chapter.name} {key}: {count_words(text)} words > {WORD_LIMITS[key]}")
    for f in chapter.follow_ups:
        if count_words(f.short_answer) > WORD_LIMITS["follow_up"]:
            problems.append(f"{chapter.name} follow-up {f.id}: {count_words(f.short_answer)} words "
                            f"> {WORD_LIMITS['follow_up']}")
    return problems


# --- rendering ----------------------------------------------------------------------------------------

def tags_html(difficulty: int, frequency: int) -> str:
    """The two small tags shown beside a question (styled by _static/interview.css)."""
    dots = "●" * difficulty + "○" * (3 - difficulty)
    return (f'<span class="iq-tag iq-difficulty-{difficulty}" title="difficulty {difficulty} of 3">'
            f'{dots} {DIFFICULTY_NAMES[difficulty]}</span> '
            f'<span class="iq-tag iq-frequency-{frequency}" title="how often it is asked: {frequency} of 3">'
            f'{FREQUENCY_NAMES[frequency]}</span>')


def render_answer_cell(chapter: Chapter) -> str:
    """The chapter's opening: title, the question with its tags, the 30-second and 2-minute answers."""
    parts = [f"# {chapter.title}", "",
             f'> **The interview question.** *"{chapter.question}"*', ">",
             f"> {tags_html(chapter.difficulty, chapter.frequency)}"]
    if chapter.short_answer is not None:
        parts += ["", "```{admonition} The 30-second answer", ":class: tip",
                  chapter.short_answer, "```", "", "**The 2-minute answer.**", "", chapter.long_answer]
    return "\n".join(parts)


def render_follow_up(chapter: Chapter, follow_up: FollowUp) -> str:
    """One follow-up as a fold-out block: tags, the short answer first, then the detail."""
    body = [tags_html(follow_up.difficulty, follow_up.frequency), "",
            f"**Short answer.** {follow_up.short_answer}"]
    if follow_up.detail:
        body += ["", follow_up.detail]
    fence = "````" if "```" in follow_up.detail else "```"
    return "\n".join([f'{fence}{{admonition}} "{follow_up.question}"', ":class: dropdown followup",
                      f":name: {chapter.label(follow_up)}", "", *body, fence])


_OPENING = re.compile(r"^(`{3,}|:{3,})\{admonition\}")


def follow_up_blocks(markdown: str) -> dict[str, tuple[int, int]]:
    """Labelled admonitions in a markdown text: ``{label: (first line, line after the last)}``.

    A block runs from its opening fence to the first line that is exactly that fence; its label is
    the ``:name:`` among the option lines right after the opening."""
    lines, blocks, i = markdown.split("\n"), {}, 0
    while i < len(lines):
        opening = _OPENING.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, name, j = opening.group(1), None, i + 1
        while j < len(lines) and lines[j].startswith(":") and not lines[j].startswith(fence):
            if lines[j].startswith(":name:"):
                name = lines[j].split(":name:", 1)[1].strip()
            j += 1
        while j < len(lines) and lines[j].rstrip() != fence:
            j += 1
        if j == len(lines):
            raise InterviewDataError(f"an admonition opened with {fence} is never closed:\n{lines[i]}")
        if name:
            blocks[name] = (i, j + 1)
        i = j + 1
    return blocks


def render_into_markdown(chapter: Chapter, markdown: str) -> str:
    """The markdown with every labelled follow-up block of this chapter rewritten from the data."""
    by_label = {chapter.label(f): f for f in chapter.follow_ups}
    lines = markdown.split("\n")
    for label, (start, end) in sorted(follow_up_blocks(markdown).items(), key=lambda kv: -kv[1][0]):
        if label in by_label:
            lines[start:end] = render_follow_up(chapter, by_label[label]).split("\n")
    return "\n".join(lines)


def render_flash_cards(chapters: list[Chapter]) -> str:
    """The flash-cards page: each question with its 30-second answer folded, and its follow-ups."""
    lines = ["# Flash cards", "",
             "Every interview question of this book, and every follow-up, each with the answer you should",
             "be able to give out loud. Say yours first, then open the card. The tags say how hard a",
             "question is and how often interviewers ask it; each chapter has the evidence and the detail.",
             "", "<!-- Generated from book/interview/*.yml by scripts/render_interview.py: edit those. -->"]
    for chapter in chapters:
        lines += ["", f"## {chapter.title}", "", f'> *"{chapter.question}"*', ">",
                  f"> {tags_html(chapter.difficulty, chapter.frequency)}", ""]
        if chapter.short_answer is not None:
            lines += [":::{dropdown} The 30-second answer", chapter.short_answer, ":::", ""]
        for f in chapter.follow_ups:
            lines += [f"**{f.question}** {tags_html(f.difficulty, f.frequency)}", "",
                      ":::{dropdown} Short answer", f.short_answer, ":::", ""]
        lines += [f"Chapter: {{doc}}`/notebooks/{chapter.name}`"]
    return "\n".join(lines) + "\n"
