"""What a quiz looks like as HTML: each question's pieces, and the static quiz the book shows.

The pieces (prompt, option, explanation) come in both math modes of :mod:`.quiz_markdown`; the live
widget (:mod:`.quiz_widget`) shows them too. The static quiz is self-contained HTML with an inline
script that grades in the page, for the built book (no kernel, no network): the grading rules
travel with it as data (answers, tolerances, feedback strings all computed here), so the page and
:meth:`Quiz.grade <imagegen_lib.practice.quiz.Quiz.grade>` say the same thing.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from importlib.resources import files
from typing import Any

from .quiz_markdown import render_inline, render_text
from .quiz_model import CORRECT, NOT_A_NUMBER, NUMBER_PATTERN, UNANSWERED, Option, Question, QuizContent

__all__ = ["FEEDBACK_COLOURS", "prompt_html", "option_html", "explanation_html", "new_quiz_id",
           "static_html"]

# Colours of the live widget (the static page takes the theme's).
FEEDBACK_COLOURS = {"right": "#1a7f37", "wrong": "#cf222e", "none": "#6e7781"}

# The quiz's CSS and page-side JS are files beside this module (package data), read once.
# The CSS is scoped to .ig-quiz, with colours from the pydata/sphinx-book theme's variables (light
# and dark) and fallbacks for other pages. The JS mirrors Question.grade; everything
# question-specific comes from the JSON answer key, so it is the same text in every quiz.
_ASSETS = files(__package__).joinpath("quiz_assets")
_CSS = _ASSETS.joinpath("quiz.css").read_text(encoding="utf-8")
_JS = _ASSETS.joinpath("quiz.js").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# A question's pieces, for both renderings
# ---------------------------------------------------------------------------------------------

def prompt_html(q: Question, math_mode: str) -> str:
    """The question's text, then what kind of answer it takes."""
    hint = {"single": "Choose one.", "multiple": "Choose all that apply.",
            "numeric": "Enter a number."}[q.type]
    return f'{render_text(q.text, math_mode)}<p class="ig-quiz-hint">{hint}</p>'


def option_html(q: Question, option: Option, math_mode: str) -> str:
    """One option, lettered as feedback refers to it."""
    text = " ".join(option.text.split())  # inline math must not span a YAML line break
    return f'<b class="ig-quiz-letter">{q.letter(option.id)}.</b> {render_inline(text, math_mode)}'


def explanation_html(q: Question, math_mode: str) -> str:
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
                    f'color:{FEEDBACK_COLOURS["right" if right else "wrong"]}">{"✓" if right else "✗"}</span>')
            items.append(f'<li class="{state}" style="display:flex;gap:.3rem;margin:.35rem 0">{mark}'
                         f'<div>{option_html(q, o, math_mode)}<div class="ig-quiz-why">'
                         f'{render_text(o.explanation, math_mode)}</div></div></li>')
        parts.append(f'<ul class="ig-quiz-explanations" style="list-style:none;margin:0;padding:0">'
                     f'{"".join(items)}</ul>')
    else:
        parts.append(f"<p><b>Answer: {html.escape(q.answer_text())}</b></p>")
    if q.explanation:
        parts.append(render_text(q.explanation, math_mode))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# The static quiz: HTML + inline JS, graded in the page
# ---------------------------------------------------------------------------------------------

_instance_counter = itertools.count(1)


def new_quiz_id(name: str) -> str:
    """An element id for the next static quiz of bank ``name``: ``ig-quiz-<name>-<n>``.

    ``n`` counts per process, so a page can show one bank twice, and re-running a notebook
    reproduces its outputs exactly (nbval compares them).
    """
    return f"ig-quiz-{_slug(name)}-{next(_instance_counter)}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "quiz"


def _answer_key(quiz: QuizContent) -> dict:
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
            f'name="{name}" value="{html.escape(o.id)}"><span>{option_html(q, o, "sphinx")}'
            f'</span></label>' for o in q.options)
        inputs = f'<div class="ig-quiz-options">{inputs}</div>'
    return (f'<li class="ig-quiz-q" data-qid="{html.escape(q.id)}">'
            f'<div class="ig-quiz-prompt">{prompt_html(q, "sphinx")}</div>{inputs}'
            f'<div class="ig-quiz-feedback" aria-live="polite"></div>'
            f'<details class="ig-quiz-explain" hidden><summary>Show explanation</summary>'
            f'<div class="ig-quiz-explain-body">{explanation_html(q, "sphinx")}</div></details></li>')


def static_html(quiz: QuizContent, uid: str) -> str:
    """The whole quiz as one ``<div id="{uid}">``: its CSS, questions, answer key and grader inline."""
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
