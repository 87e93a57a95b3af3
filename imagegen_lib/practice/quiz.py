"""Self-check quizzes for the book's chapters: question banks as data, graded in two places.

A bank is a YAML (or JSON) file ``book/quizzes/<chapter>.yml``::

    title: "Exercise A: check your understanding"      # optional
    questions:
      - id: softmax-output            # unique in the bank; named in every error message
        type: single                  # single | multiple | numeric
        question: |
          What does `nn.Softmax(dim=1)` force on the 784 outputs? Math as $\\sum_i p_i = 1$.
        options:                      # single / multiple only; every option explains itself
          - {id: a, text: "...", explanation: "..."}
          - {id: b, text: "...", explanation: "..."}
        answer: b                     # single: one option id; multiple: a list of option ids
      - id: d-loss-equilibrium
        type: numeric
        question: "..."
        answer: 1.386
        tolerance: 0.005              # absolute; |given - answer| <= tolerance is right
        unit: nats                    # optional
        explanation: "..."            # numeric questions explain the answer as a whole

Text fields take a small, safe subset of Markdown: paragraphs, ```fenced code```, `inline code`,
**bold**, *italic* and TeX math in ``$...$`` / ``$$...$$`` (``\\$`` is a dollar sign).
Everything else is HTML-escaped, so a bank can never inject markup or scripts into the book
(:mod:`.quiz_markdown`).

One :class:`Quiz` renders two ways from one ``display(quiz)`` (:meth:`Quiz._repr_mimebundle_`):

* **live** (JupyterLab, a kernel): an ipywidgets form whose "Check answers" button calls
  :meth:`Quiz.grade` in Python — the same function the unit tests call (:mod:`.quiz_widget`);
* **static** (the built book, no kernel, no network): a self-contained ``text/html`` version
  with an inline script that grades in the page. The grading rules travel with it as data
  (answers, tolerances, feedback strings all computed in Python), so both versions say the same
  thing (:mod:`.quiz_html`).

The book picks ``text/html`` over the widget view through myst-nb's ``nb_mime_priority_overrides``
(see ``_config.yml``); plain widgets such as tqdm bars carry no ``text/html`` and are unaffected.
The widget's parts are only built once a frontend displays it (:class:`QuizWidget`), so an
executed notebook stores two tiny widget models for a quiz, not hundreds.

This module reads and checks banks and is where the rest of the book imports from; the questions
themselves and their grading are in :mod:`.quiz_model`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .quiz_html import new_quiz_id, static_html
from .quiz_markdown import render_text
from .quiz_model import QUESTION_TYPES, Option, Question, QuestionResult, Result
from .quiz_widget import QuizWidget

__all__ = ["Quiz", "Question", "Option", "Result", "QuestionResult", "QuizError",
           "QuizWidget", "load_quiz", "quiz_dir", "render_text"]

BANK_SUFFIXES = (".yml", ".yaml", ".json")


class QuizError(ValueError):
    """A malformed question bank. The message names the file and the question."""


# ---------------------------------------------------------------------------------------------
# Loading and validating a bank
# ---------------------------------------------------------------------------------------------

_BANK_KEYS = {"title", "intro", "questions"}
_QUESTION_KEYS = {
    "single": {"id", "type", "question", "options", "answer", "explanation"},
    "multiple": {"id", "type", "question", "options", "answer", "explanation"},
    "numeric": {"id", "type", "question", "answer", "tolerance", "unit", "explanation"},
}
_OPTION_KEYS = {"id", "text", "explanation"}


def _fail(source: str, qid: str | None, message: str) -> QuizError:
    where = f"{source}: question {qid!r}" if qid is not None else source
    return QuizError(f"{where}: {message}")


def _text(raw: Mapping, key: str, fail) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise fail(f"needs a non-empty '{key}'")
    return value.strip()


def _check_keys(raw: Mapping, allowed: set[str], what: str, fail) -> None:
    """Unknown keys are errors: a typo like 'explaination' would otherwise vanish silently."""
    extra = sorted(set(raw) - allowed)
    if extra:
        raise fail(f"unknown key(s) {extra} in {what}; allowed: {sorted(allowed)}")


def _parse_options(raw: Mapping, fail) -> tuple[Option, ...]:
    items = raw.get("options")
    if not isinstance(items, list) or len(items) < 2:
        raise fail("needs a list of at least 2 'options'")
    if len(items) > 26:
        raise fail("has more than 26 options (they are lettered A-Z)")
    options, seen = [], set()
    for i, item in enumerate(items, 1):
        if not isinstance(item, Mapping):
            raise fail(f"option #{i} must be a mapping with id, text, explanation")
        _check_keys(item, _OPTION_KEYS, f"option #{i}", fail)
        oid = item.get("id")
        if oid is None or str(oid).strip() == "":
            raise fail(f"option #{i} needs an 'id'")
        oid = str(oid)
        if oid in seen:
            raise fail(f"duplicate option id {oid!r}")
        seen.add(oid)
        options.append(Option(oid, _text(item, "text", lambda m: fail(f"option {oid!r} {m}")),
                              _text(item, "explanation", lambda m: fail(f"option {oid!r} {m}"))))
    return tuple(options)


def _parse_choice_answer(raw: Mapping, qtype: str, options: tuple[Option, ...], fail):
    if raw.get("answer") is None:
        raise fail("has no 'answer'")
    ids = {o.id for o in options}
    if qtype == "single":
        answer = raw["answer"]
        if isinstance(answer, (list, tuple, dict)):
            raise fail("is single choice: 'answer' must be one option id (use type: multiple)")
        if str(answer) not in ids:
            raise fail(f"answer {answer!r} is not among the option ids {sorted(ids)}")
        return str(answer)
    answer = raw["answer"]
    if not isinstance(answer, list) or not answer:
        raise fail("is multiple choice: 'answer' must be a non-empty list of option ids")
    answer = [str(a) for a in answer]
    if len(set(answer)) != len(answer):
        raise fail(f"answer {answer} lists an option twice")
    missing = [a for a in answer if a not in ids]
    if missing:
        raise fail(f"answer {missing} is not among the option ids {sorted(ids)}")
    return frozenset(answer)


def _number(raw: Mapping, key: str, fail) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise fail(f"needs a finite number as '{key}', got {value!r}")
    return float(value)


def _parse_numeric(raw: Mapping, label: str, text: str, fail) -> Question:
    if raw.get("answer") is None:
        raise fail("has no 'answer'")
    if raw.get("tolerance") is None:
        raise fail("is numeric and needs a 'tolerance' (absolute, e.g. 0.01; 0 for exact)")
    tolerance = _number(raw, "tolerance", fail)
    if tolerance < 0:
        raise fail(f"tolerance must be >= 0, got {tolerance}")
    return Question(label, "numeric", text, _number(raw, "answer", fail), tolerance=tolerance,
                    unit=str(raw.get("unit") or ""), explanation=_text(raw, "explanation", fail))


def _parse_question(raw: Any, index: int, source: str) -> Question:
    """One question, checked; errors name the question by id (or by position if it has none)."""
    if not isinstance(raw, Mapping):
        raise _fail(source, f"#{index}", "must be a mapping")
    qid = raw.get("id")
    label = str(qid) if qid is not None and str(qid).strip() else f"#{index}"

    def fail(message: str) -> QuizError:
        return _fail(source, label, message)

    if label.startswith("#"):
        raise fail("needs an 'id'")
    qtype = raw.get("type")
    if qtype not in QUESTION_TYPES:
        raise fail(f"unknown type {qtype!r}; expected one of {', '.join(QUESTION_TYPES)}")
    _check_keys(raw, _QUESTION_KEYS[qtype], f"a {qtype} question", fail)
    text = _text(raw, "question", fail)
    if qtype == "numeric":
        return _parse_numeric(raw, label, text, fail)
    explanation = raw.get("explanation") or ""
    if not isinstance(explanation, str):
        raise fail("'explanation' must be text")
    options = _parse_options(raw, fail)
    answer = _parse_choice_answer(raw, qtype, options, fail)
    return Question(label, qtype, text, answer, options=options, explanation=explanation.strip())


def _read_bank(path: Path) -> Any:
    """YAML or JSON; syntax errors become QuizErrors that name the file."""
    import yaml  # PyYAML: a dependency of the library

    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise QuizError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# The quiz
# ---------------------------------------------------------------------------------------------

class Quiz:
    """A question bank that grades answers (:meth:`grade`) and displays itself live or static."""

    def __init__(self, questions: Iterable[Question], title: str = "Check your understanding",
                 intro: str = "", name: str = "quiz", source: str = "<memory>"):
        self.questions = tuple(questions)
        self.title, self.intro, self.name, self.source = title, intro, name, source
        self._by_id = {q.id: q for q in self.questions}

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>", name: str = "quiz") -> Quiz:
        """Validate a parsed bank; every problem raises :class:`QuizError` naming ``source``."""
        if not isinstance(data, Mapping) or not isinstance(data.get("questions"), list):
            raise _fail(source, None, "a bank is a mapping with a 'questions' list")
        _check_keys(data, _BANK_KEYS, "the bank", lambda m: _fail(source, None, m))
        if not data["questions"]:
            raise _fail(source, None, "'questions' is empty")
        questions, seen = [], set()
        for i, raw in enumerate(data["questions"], 1):
            q = _parse_question(raw, i, source)
            if q.id in seen:
                raise _fail(source, q.id, "duplicate question id")
            seen.add(q.id)
            questions.append(q)
        return cls(questions, title=str(data.get("title") or "Check your understanding"),
                   intro=str(data.get("intro") or ""), name=name, source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Quiz:
        path = Path(path)
        return cls.from_dict(_read_bank(path), source=str(path), name=path.stem)

    # -- grading ----------------------------------------------------------------------------
    def grade(self, answers: Mapping[str, Any]) -> Result:
        """Grade ``{question_id: answer}``; questions left out count as unanswered (and wrong).

        Pure Python: the live widget calls this, and so do the tests.
        """
        unknown = sorted(set(answers) - set(self._by_id))
        if unknown:
            raise ValueError(f"{self.source}: no question(s) {unknown}")
        return Result(tuple(q.grade(answers.get(q.id)) for q in self.questions))

    def __getitem__(self, question_id: str) -> Question:
        return self._by_id[question_id]

    def __len__(self) -> int:
        return len(self.questions)

    def __repr__(self) -> str:
        return f"<Quiz {self.name!r}: {len(self)} questions>"

    # -- display ----------------------------------------------------------------------------
    def widget(self, lazy: bool = False) -> QuizWidget:
        """The live version (needs ipywidgets and, to grade, a kernel). See QuizWidget on lazy."""
        return QuizWidget(self, lazy=lazy)

    def to_html(self) -> str:
        """The static version: self-contained HTML + inline JS that grades in the page."""
        return static_html(self, new_quiz_id(self.name))

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """Both versions in one output: JupyterLab shows the widget, the book the HTML.

        The instance number in the HTML ids comes from a per-process counter, so re-running a
        notebook reproduces its outputs exactly (nbval compares them).
        """
        bundle = {"text/plain": repr(self), "text/html": self.to_html()}
        try:
            view = self.widget(lazy=True).box._repr_mimebundle_()
        except ImportError:  # no ipywidgets: the HTML version still works in any frontend
            return bundle
        bundle.update({k: v for k, v in view.items() if k != "text/plain"})
        return bundle


def quiz_dir() -> Path:
    """Where banks live: ``$IMAGEGEN_QUIZ_DIR``; else ``book/quizzes`` of the book's files
    (:func:`imagegen_lib.core.paths.book_root`: the clone, or what a notebook's first cell fetched
    outside one); else the nearest ``book/quizzes`` at or above the working directory."""
    if os.environ.get("IMAGEGEN_QUIZ_DIR"):
        return Path(os.environ["IMAGEGEN_QUIZ_DIR"])
    from ..core.paths import book_root

    for root in [book_root(), Path.cwd(), *Path.cwd().parents]:
        if (root / "book" / "quizzes").is_dir():
            return root / "book" / "quizzes"
    raise FileNotFoundError(f"no book/quizzes folder in {book_root()} or above the working directory: outside "
                            "the book's repository fetch it with imagegen_lib.book.files.prepare_chapter(<chapter>), "
                            "or set IMAGEGEN_QUIZ_DIR")


def load_quiz(chapter: str) -> Quiz:
    """The bank of one chapter, e.g. ``load_quiz("exercise_a_gan_mnist")``."""
    folder = quiz_dir()
    for suffix in ("", *BANK_SUFFIXES):
        path = folder / f"{chapter}{suffix}"
        if path.is_file():
            return Quiz.from_file(path)
    raise FileNotFoundError(f"no quiz bank {chapter!r} in {folder} (looked for {', '.join(BANK_SUFFIXES)})")
