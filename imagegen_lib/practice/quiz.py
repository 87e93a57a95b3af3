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
Everything else is HTML-escaped, so a bank can never inject markup or scripts into the book.

One :class:`Quiz` renders two ways from one ``display(quiz)`` (:meth:`Quiz._repr_mimebundle_`):

* **live** (JupyterLab, a kernel): an ipywidgets form whose "Check answers" button calls
  :meth:`Quiz.grade` in Python — the same function the unit tests call;
* **static** (the built book, no kernel, no network): a self-contained ``text/html`` version
  with an inline script that grades in the page. The grading rules travel with it as data
  (answers, tolerances, feedback strings all computed here), so both versions say the same thing.

The book picks ``text/html`` over the widget view through myst-nb's ``nb_mime_priority_overrides``
(see ``_config.yml``); plain widgets such as tqdm bars carry no ``text/html`` and are unaffected.
The widget's parts are only built once a frontend displays it (:class:`QuizWidget`), so an
executed notebook stores two tiny widget models for a quiz, not hundreds.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

__all__ = ["Quiz", "Question", "Option", "Result", "QuestionResult", "QuizError",
           "QuizWidget", "load_quiz", "quiz_dir", "render_text"]

QUESTION_TYPES = ("single", "multiple", "numeric")
BANK_SUFFIXES = (".yml", ".yaml", ".json")

# One number syntax for Python and JavaScript (the static page grades with the same pattern):
# "1.386", "-2", ".5", "1e-3". No "1,5", "inf", "nan" or "1_000", which float() alone would take.
NUMBER_PATTERN = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
_NUMBER_RE = re.compile(NUMBER_PATTERN, re.ASCII)

# Feedback strings, shared with the page's script so that both versions read the same.
CORRECT = "Correct."
UNANSWERED = "No answer yet."
NOT_A_NUMBER = "Not a number: write it like 1.39 or 2e-4."


class QuizError(ValueError):
    """A malformed question bank. The message names the file and the question."""


# ---------------------------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------------------------

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
# Text rendering: a safe Markdown subset, math kept for MathJax
# ---------------------------------------------------------------------------------------------

_FENCE_RE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_INLINE_RE = re.compile(
    r"(?<!\\)\$\$(?P<dmath>.+?)(?<!\\)\$\$"
    r"|(?<!\\)\$(?P<math>[^$\n]+?)(?<!\\)\$"
    r"|`(?P<code>[^`\n]+)`"
    r"|\*\*(?P<bold>[^*\n]+)\*\*"
    r"|\*(?P<em>[^*\n]+)\*",
    re.S,
)


def _math(tex: str, display: bool, math_mode: str) -> str:
    """Sphinx's own markup for MathJax 3 in the book; ``$...$`` for ipywidgets.HTMLMath."""
    tex = html.escape(tex.strip(), quote=False)
    if math_mode == "dollar":
        return f"$${tex}$$" if display else f"${tex}$"
    body = rf"\[{tex}\]" if display else rf"\({tex}\)"
    return f'<span class="math notranslate nohighlight">{body}</span>'


def _plain(text: str, math_mode: str) -> str:
    escaped = html.escape(text, quote=False)
    # A literal "\$" is a dollar sign; HTMLMath needs it kept escaped, the book does not.
    return escaped if math_mode == "dollar" else escaped.replace("\\$", "$")


def render_inline(text: str, math_mode: str = "sphinx") -> str:
    """One line of bank text as HTML: escape everything except the recognised markup."""
    out, pos = [], 0
    for m in _INLINE_RE.finditer(text):
        out.append(_plain(text[pos:m.start()], math_mode))
        kind, value = m.lastgroup, m.group(m.lastgroup)
        if kind in ("dmath", "math"):
            out.append(_math(value, kind == "dmath", math_mode))
        else:
            tag = {"code": "code", "bold": "strong", "em": "em"}[kind]
            out.append(f"<{tag}>{html.escape(value, quote=False)}</{tag}>")
        pos = m.end()
    out.append(_plain(text[pos:], math_mode))
    return "".join(out)


def render_text(text: str, math_mode: str = "sphinx") -> str:
    """Bank text as block HTML: paragraphs and fenced code blocks, inline markup inside."""
    blocks, pos = [], 0
    for m in _FENCE_RE.finditer(text):
        blocks += _paragraphs(text[pos:m.start()], math_mode)
        blocks.append(f"<pre><code>{html.escape(m.group(1).rstrip(), quote=False)}</code></pre>")
        pos = m.end()
    blocks += _paragraphs(text[pos:], math_mode)
    return "\n".join(blocks)


def _paragraphs(text: str, math_mode: str) -> list[str]:
    return [f"<p>{render_inline(' '.join(p.split()), math_mode)}</p>"
            for p in re.split(r"\n\s*\n", text) if p.strip()]


# ---------------------------------------------------------------------------------------------
# The quiz
# ---------------------------------------------------------------------------------------------

_instance_counter = itertools.count(1)


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
        return _static_html(self, f"ig-quiz-{_slug(self.name)}-{next(_instance_counter)}")

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


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "quiz"


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


# ---------------------------------------------------------------------------------------------
# Shared pieces of both renderings
# ---------------------------------------------------------------------------------------------

# Colours of the live widget (the static page takes the theme's).
_FEEDBACK_COLOURS = {"right": "#1a7f37", "wrong": "#cf222e", "none": "#6e7781"}


def _prompt_html(q: Question, math_mode: str) -> str:
    hint = {"single": "Choose one.", "multiple": "Choose all that apply.",
            "numeric": "Enter a number."}[q.type]
    return f'{render_text(q.text, math_mode)}<p class="ig-quiz-hint">{hint}</p>'


def _option_html(q: Question, option: Option, math_mode: str) -> str:
    text = " ".join(option.text.split())  # inline math must not span a YAML line break
    return f'<b class="ig-quiz-letter">{q.letter(option.id)}.</b> {render_inline(text, math_mode)}'


def _explanation_html(q: Question, math_mode: str) -> str:
    """Every option with why it is right or wrong (the right ones marked), then the general note.

    The layout styles are inline because the live widget shows this HTML without the page's CSS.
    """
    parts = []
    if q.options:
        items = []
        for o in q.options:
            right = o.id in q.answer_ids()
            state = "is-right" if right else "is-wrong"
            mark = (f'<span class="ig-quiz-mark {state}" style="flex:none;width:1rem;font-weight:700;'
                    f'color:{_FEEDBACK_COLOURS["right" if right else "wrong"]}">{"✓" if right else "✗"}</span>')
            items.append(f'<li class="{state}" style="display:flex;gap:.3rem;margin:.35rem 0">{mark}'
                         f'<div>{_option_html(q, o, math_mode)}<div class="ig-quiz-why">'
                         f'{render_text(o.explanation, math_mode)}</div></div></li>')
        parts.append(f'<ul class="ig-quiz-explanations" style="list-style:none;margin:0;padding:0">'
                     f'{"".join(items)}</ul>')
    else:
        parts.append(f"<p><b>Answer: {html.escape(q.answer_text())}</b></p>")
    if q.explanation:
        parts.append(render_text(q.explanation, math_mode))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Live version: ipywidgets, graded by Quiz.grade in the kernel
# ---------------------------------------------------------------------------------------------

class QuizWidget:
    """The ipywidgets form. ``box`` is the widget to display; the parts are attributes so that
    tests can "click" by setting values and calling ``check_button.click()``.

    ``lazy=True`` (what ``display(quiz)`` uses) creates only the empty outer box and builds the
    ~50 widgets per quiz when a frontend first shows it: frontends report each view they
    create through the ``_view_count`` trait, and a notebook executed headlessly (the book
    build, nbval) never does. So the book's pages and the executed notebooks carry two tiny
    widget models for a quiz instead of ~650 (about 600 kB of widget state per chapter).
    """

    def __init__(self, quiz: Quiz, lazy: bool = False):
        import ipywidgets as W

        self.quiz = quiz
        self.choices: dict[str, dict[str, Any]] = {}   # question id -> option id -> Checkbox
        self.numbers: dict[str, Any] = {}              # question id -> Text
        self.feedback: dict[str, Any] = {}             # question id -> HTML
        self.explain_buttons: dict[str, Any] = {}
        self.explanations: dict[str, Any] = {}
        self.score = self.check_button = self.reset_button = None
        self.last_result: Result | None = None
        self.box = W.VBox(layout=W.Layout(border="1px solid #d0d7de", padding="8px 16px",
                                          margin="8px 0"))
        if lazy:
            self.box._view_count = 0  # start view tracking (None = frontends don't report)
            self.box.observe(self._on_view_count, names="_view_count")
        else:
            self.build()

    def _on_view_count(self, change) -> None:
        if (change["new"] or 0) > 0 and not self.box.children:
            self.build()

    def build(self) -> None:
        """Create the form's widgets (once)."""
        import ipywidgets as W

        if self.box.children:
            return
        self.score = W.HTML("", layout=W.Layout(margin="0 0 0 12px"))
        self.check_button = W.Button(description="Check answers", button_style="primary",
                                     icon="check")
        self.reset_button = W.Button(description="Reset", icon="undo")
        self.check_button.on_click(lambda _: self.check())
        self.reset_button.on_click(lambda _: self.reset())
        header = [W.HTMLMath(f"<h4 style='margin:0'>{html.escape(self.quiz.title)}</h4>"
                             + (render_text(self.quiz.intro, "dollar") if self.quiz.intro else ""))]
        questions = [self._question_box(W, i, q) for i, q in enumerate(self.quiz.questions, 1)]
        footer = W.HBox([self.check_button, self.reset_button, self.score],
                        layout=W.Layout(align_items="center"))
        self.box.children = header + questions + [footer]

    def _repr_mimebundle_(self, **kwargs):
        return self.box._repr_mimebundle_(**kwargs)

    def _question_box(self, W, number: int, q: Question):
        prompt = W.HTMLMath(f"<b>Question {number}.</b> {_prompt_html(q, 'dollar')}")
        if q.type == "numeric":
            self.numbers[q.id] = W.Text(placeholder="a number", layout=W.Layout(width="12em"))
            inputs = [W.HBox([self.numbers[q.id], W.Label(q.unit)])]
        else:
            inputs = [self._option_row(W, q, o) for o in q.options]
        self.feedback[q.id] = W.HTML("", layout=W.Layout(margin="0 12px 0 0"))
        self.explanations[q.id] = W.HTMLMath(_explanation_html(q, "dollar"),
                                             layout=W.Layout(display="none"))
        button = W.Button(description="Show explanation", disabled=True,
                          layout=W.Layout(width="auto"))
        button.on_click(lambda _, qid=q.id: self.toggle_explanation(qid))
        self.explain_buttons[q.id] = button
        return W.VBox([prompt, *inputs, W.HBox([self.feedback[q.id], button],
                                               layout=W.Layout(align_items="center")),
                       self.explanations[q.id]],
                      layout=W.Layout(border_top="1px solid #d0d7de", padding="4px 0 8px"))

    def _option_row(self, W, q: Question, option: Option):
        box = W.Checkbox(value=False, indent=False, layout=W.Layout(width="28px"))
        self.choices.setdefault(q.id, {})[option.id] = box
        if q.type == "single":
            box.observe(lambda change, qid=q.id, oid=option.id: self._only_one(qid, oid, change),
                        names="value")
        return W.HBox([box, W.HTMLMath(_option_html(q, option, "dollar"))],
                      layout=W.Layout(align_items="center"))

    def _only_one(self, qid: str, oid: str, change) -> None:
        """Single choice with checkboxes (their labels can hold math, RadioButtons' cannot)."""
        if change["new"]:
            for other, box in self.choices[qid].items():
                if other != oid and box.value:
                    box.value = False

    def answers(self) -> dict[str, Any]:
        """The form's current answers, in the shape :meth:`Quiz.grade` takes."""
        out: dict[str, Any] = {qid: box.value for qid, box in self.numbers.items()}
        for qid, boxes in self.choices.items():
            chosen = [oid for oid, box in boxes.items() if box.value]
            out[qid] = (chosen[0] if chosen else None) if self.quiz[qid].type == "single" else chosen
        return out

    def check(self) -> Result:
        self.build()
        result = self.last_result = self.quiz.grade(self.answers())
        for r in result.questions:
            state = "right" if r.correct else ("wrong" if r.answered else "none")
            mark = {"right": "✓ ", "wrong": "✗ ", "none": ""}[state]
            self.feedback[r.question_id].value = (
                f"<span style='color:{_FEEDBACK_COLOURS[state]};font-weight:600'>"
                f"{mark}{html.escape(r.feedback)}</span>")
            self.explain_buttons[r.question_id].disabled = not r.answered
        self.score.value = f"<b>{score_text(result.score, result.total)}</b>"
        return result

    def toggle_explanation(self, qid: str) -> None:
        shown = self.explanations[qid].layout.display != "none"
        self.explanations[qid].layout.display = "none" if shown else None
        self.explain_buttons[qid].description = "Show explanation" if shown else "Hide explanation"

    def reset(self) -> None:
        self.build()
        for boxes in self.choices.values():
            for box in boxes.values():
                box.value = False
        for text in self.numbers.values():
            text.value = ""
        for qid in self.feedback:
            self.feedback[qid].value = ""
            self.explanations[qid].layout.display = "none"
            self.explain_buttons[qid].description = "Show explanation"
            self.explain_buttons[qid].disabled = True
        self.score.value = ""
        self.last_result = None


# ---------------------------------------------------------------------------------------------
# Static version: HTML + inline JS, graded in the page
# ---------------------------------------------------------------------------------------------

def _answer_key(quiz: Quiz) -> dict:
    """What the page's script needs to grade: answers, tolerances and the feedback strings."""
    questions = []
    for q in quiz.questions:
        entry = {"id": q.id, "type": q.type, "wrong": q.wrong_feedback()}
        if q.type == "numeric":
            entry.update(answer=q.answer, tolerance=q.tolerance)
        else:
            entry["answer"] = sorted(q.answer_ids())
        questions.append(entry)
    return {"questions": questions, "number": NUMBER_PATTERN, "correct": CORRECT,
            "unanswered": UNANSWERED, "notANumber": NOT_A_NUMBER, "total": len(quiz)}


def _json_for_script(data: Any) -> str:
    """JSON safe inside <script>: no "</script>", no "<!--", whatever the bank says."""
    return (json.dumps(data, ensure_ascii=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _static_question(uid: str, number: int, q: Question) -> str:
    name = html.escape(f"{uid}-q{number}")
    if q.type == "numeric":
        unit = f' <span class="ig-quiz-unit">{html.escape(q.unit)}</span>' if q.unit else ""
        inputs = (f'<label class="ig-quiz-numeric">Your answer: <input type="text" '
                  f'class="ig-quiz-num" inputmode="decimal" autocomplete="off" '
                  f'placeholder="a number">{unit}</label>')
    else:
        kind = "radio" if q.type == "single" else "checkbox"
        inputs = "".join(
            f'<label class="ig-quiz-opt"><input type="{kind}" class="ig-quiz-choice" '
            f'name="{name}" value="{html.escape(o.id)}"><span>{_option_html(q, o, "sphinx")}'
            f'</span></label>' for o in q.options)
        inputs = f'<div class="ig-quiz-options">{inputs}</div>'
    return (f'<li class="ig-quiz-q" data-qid="{html.escape(q.id)}">'
            f'<div class="ig-quiz-prompt">{_prompt_html(q, "sphinx")}</div>{inputs}'
            f'<div class="ig-quiz-feedback" aria-live="polite"></div>'
            f'<details class="ig-quiz-explain" hidden><summary>Show explanation</summary>'
            f'<div class="ig-quiz-explain-body">{_explanation_html(q, "sphinx")}</div></details></li>')


def _static_html(quiz: Quiz, uid: str) -> str:
    questions = "".join(_static_question(uid, i, q) for i, q in enumerate(quiz.questions, 1))
    intro = f'<div class="ig-quiz-intro">{render_text(quiz.intro)}</div>' if quiz.intro else ""
    return (
        f'<div class="ig-quiz" id="{uid}">'
        f"<style>{_CSS}</style>"
        f'<div class="ig-quiz-header"><span class="ig-quiz-title">{html.escape(quiz.title)}</span>'
        f'<span class="ig-quiz-score" aria-live="polite"></span></div>{intro}'
        f'<ol class="ig-quiz-questions">{questions}</ol>'
        f'<div class="ig-quiz-actions"><button type="button" class="ig-quiz-check">Check answers'
        f'</button><button type="button" class="ig-quiz-reset">Reset</button>'
        f'<span class="ig-quiz-score"></span></div>'
        f'<script type="application/json" class="ig-quiz-key">{_json_for_script(_answer_key(quiz))}</script>'
        f"<script>{_JS.replace('__QUIZ_ID__', json.dumps(uid))}</script>"
        "</div>"
    )


# The quiz's CSS and page-side JS are files beside this module (package data), read once.
# The CSS is scoped to .ig-quiz, with colours from the pydata/sphinx-book theme's variables (light
# and dark) and fallbacks for other pages. The JS mirrors Question.grade; everything
# question-specific comes from the JSON answer key, so it is the same text in every quiz.
_ASSETS = files(__package__).joinpath("quiz_assets")
_CSS = _ASSETS.joinpath("quiz.css").read_text(encoding="utf-8")
_JS = _ASSETS.joinpath("quiz.js").read_text(encoding="utf-8")
