"""The live quiz in JupyterLab: an ipywidgets form whose "Check answers" button grades in the kernel
with :meth:`Quiz.grade <imagegen_lib.practice.quiz.Quiz.grade>`, the same function the unit tests call.
"""

from __future__ import annotations

import html
from typing import Any

from .quiz_html import FEEDBACK_COLOURS, explanation_html, option_html, prompt_html
from .quiz_markdown import render_text
from .quiz_model import Option, Question, QuizContent, Result, score_text

__all__ = ["QuizWidget"]


class QuizWidget:
    """The ipywidgets form. ``box`` is the widget to display; the parts are attributes so that
    tests can "click" by setting values and calling ``check_button.click()``.

    ``lazy=True`` (what ``display(quiz)`` uses) creates only the empty outer box and builds the
    ~50 widgets per quiz when a frontend first shows it: frontends report each view they
    create through the ``_view_count`` trait, and a notebook executed headlessly (the book
    build, nbval) never does. So the book's pages and the executed notebooks carry two tiny
    widget models for a quiz instead of ~650 (about 600 kB of widget state per chapter).
    """

    def __init__(self, quiz: QuizContent, lazy: bool = False):
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
        prompt = W.HTMLMath(f"<b>Question {number}.</b> {prompt_html(q, 'dollar')}")
        if q.type == "numeric":
            self.numbers[q.id] = W.Text(placeholder="a number", layout=W.Layout(width="12em"))
            inputs = [W.HBox([self.numbers[q.id], W.Label(q.unit)])]
        else:
            inputs = [self._option_row(W, q, o) for o in q.options]
        self.feedback[q.id] = W.HTML("", layout=W.Layout(margin="0 12px 0 0"))
        self.explanations[q.id] = W.HTMLMath(explanation_html(q, "dollar"),
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
        return W.HBox([box, W.HTMLMath(option_html(q, option, "dollar"))],
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
                f"<span style='color:{FEEDBACK_COLOURS[state]};font-weight:600'>"
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
