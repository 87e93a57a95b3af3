"""What a quiz question is and how an answer to it is graded: options, questions, results, and the
number syntax and feedback strings that the page's script shares.

Banks are read and checked in :mod:`.quiz`; the two renderings (:mod:`.quiz_widget`, :mod:`.quiz_html`)
only read these objects.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

__all__ = ["QuizContent", "Option", "Question", "QuestionResult", "Result", "within_tolerance", "score_text",
           "QUESTION_TYPES", "NUMBER_PATTERN", "CORRECT", "UNANSWERED", "NOT_A_NUMBER"]

QUESTION_TYPES = ("single", "multiple", "numeric")

# One number syntax for Python and JavaScript (the static page grades with the same pattern):
# "1.386", "-2", ".5", "1e-3". No "1,5", "inf", "nan" or "1_000", which float() alone would take.
NUMBER_PATTERN = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
_NUMBER_RE = re.compile(NUMBER_PATTERN, re.ASCII)

# Feedback strings, shared with the page's script so that both versions read the same.
CORRECT = "Correct."
UNANSWERED = "No answer yet."
NOT_A_NUMBER = "Not a number: write it like 1.39 or 2e-4."


@dataclass(frozen=True)
class Option:
    id: str
    text: str
    explanation: str


@dataclass(frozen=True)
class Question:
    """One question. ``answer`` is an option id (single), a frozenset of ids (multiple) or a float."""

    id: str
    type: str
    text: str
    answer: Any
    options: tuple[Option, ...] = ()
    tolerance: float | None = None
    unit: str = ""
    explanation: str = ""

    def letter(self, option_id: str) -> str:
        """Options are shown as A, B, C...; feedback refers to them that way."""
        return chr(ord("A") + [o.id for o in self.options].index(option_id))

    def answer_text(self) -> str:
        """The right answer as a reader sees it: "B", "A and C", "1.386 (± 0.005 nats)"."""
        if self.type == "numeric":
            unit = f" {self.unit}" if self.unit else ""
            return f"{self.answer:g} (± {self.tolerance:g}{unit})"
        letters = [self.letter(o.id) for o in self.options if o.id in self.answer_ids()]
        return letters[0] if len(letters) == 1 else ", ".join(letters[:-1]) + " and " + letters[-1]

    def wrong_feedback(self) -> str:
        return f"Not quite: the answer is {self.answer_text()}."

    def answer_ids(self) -> frozenset[str]:
        """The right option ids, as a set for single and multiple choice alike."""
        return frozenset([self.answer]) if self.type == "single" else self.answer

    def grade(self, given: Any) -> QuestionResult:
        """Grade one answer: an option id (single), ids (multiple), a number or a string (numeric)."""
        if self.type == "numeric":
            answered, correct, feedback = self._grade_numeric(given)
        else:
            answered, correct = self._grade_choice(given)
            feedback = CORRECT if correct else self.wrong_feedback()
        if not answered:
            feedback = UNANSWERED
        return QuestionResult(self.id, answered, correct, feedback)

    def _grade_choice(self, given: Any) -> tuple[bool, bool]:
        if given is None or given == "":
            chosen: frozenset[str] = frozenset()
        elif isinstance(given, str):
            chosen = frozenset([given])
        else:
            chosen = frozenset(given)
        unknown = chosen - {o.id for o in self.options}
        if unknown:
            raise ValueError(f"question {self.id!r} has no option(s) {sorted(unknown)}")
        if self.type == "single" and len(chosen) > 1:
            raise ValueError(f"question {self.id!r} takes one option, got {sorted(chosen)}")
        return bool(chosen), chosen == self.answer_ids()

    def _grade_numeric(self, given: Any) -> tuple[bool, bool, str]:
        if given is None or (isinstance(given, str) and not given.strip()):
            return False, False, UNANSWERED
        if isinstance(given, str):
            if not _NUMBER_RE.match(given.strip()):
                return True, False, NOT_A_NUMBER
            given = float(given.strip())
        correct = within_tolerance(float(given), self.answer, self.tolerance)
        return True, correct, CORRECT if correct else self.wrong_feedback()


def within_tolerance(x: float, answer: float, tolerance: float) -> bool:
    """``|x - answer| <= tolerance``, with a hair of slack so that the edge itself counts:
    in binary floating point 1.396 - 1.386 is 0.010000000000000009, not 0.01.
    (The page's script uses the same formula.)"""
    return math.isfinite(x) and abs(x - answer) <= tolerance + 1e-9 * max(1.0, abs(answer))


@dataclass(frozen=True)
class QuestionResult:
    question_id: str
    answered: bool
    correct: bool
    feedback: str


@dataclass(frozen=True)
class Result:
    """The outcome of :meth:`Quiz.grade`: one :class:`QuestionResult` per question, in order."""

    questions: tuple[QuestionResult, ...]

    @property
    def score(self) -> int:
        return sum(q.correct for q in self.questions)

    @property
    def total(self) -> int:
        return len(self.questions)

    def __getitem__(self, question_id: str) -> QuestionResult:
        for q in self.questions:
            if q.question_id == question_id:
                return q
        raise KeyError(question_id)

    def summary(self) -> str:
        return score_text(self.score, self.total)


def score_text(score: int, total: int) -> str:
    return f"Score: {score} / {total}"


class QuizContent(Protocol):
    """What the HTML and the widget read from a quiz (:class:`imagegen_lib.practice.quiz.Quiz` is one).

    A protocol, not the class itself: ``quiz.py`` imports the modules that draw a quiz, so they
    cannot import it back.
    """

    title: str
    intro: str
    questions: tuple[Question, ...]

    def grade(self, answers: Mapping[str, Any]) -> Result: ...
