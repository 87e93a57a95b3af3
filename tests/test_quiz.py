"""imagegen_lib.practice.quiz and its quiz_* modules: bank parsing and validation, grading, safe HTML, and the
live widget's callbacks.

The static page's grader is exercised in a real browser by the book check (see the quiz section of
the report / tests/browser); here we check what Python controls: the answer key it ships, the
escaping, that nothing points off-page, and that the script is valid JavaScript.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from imagegen_lib.practice.quiz import Quiz, QuizError, load_quiz
from imagegen_lib.practice.quiz_html import static_html
from imagegen_lib.practice.quiz_markdown import render_inline, render_text
from imagegen_lib.practice.quiz_model import NOT_A_NUMBER, NUMBER_PATTERN, UNANSWERED
from imagegen_lib.practice.quiz_widget import QuizWidget

BANK = {
    "title": "Test quiz",
    "questions": [
        {"id": "one", "type": "single", "question": "Pick $x^2$ with `code`.",
         "options": [{"id": "a", "text": "first", "explanation": "why a"},
                     {"id": "b", "text": "second $\\beta_1$", "explanation": "why b"}],
         "answer": "b"},
        {"id": "many", "type": "multiple", "question": "Pick several.",
         "options": [{"id": "a", "text": "A", "explanation": "ea"},
                     {"id": "b", "text": "B", "explanation": "eb"},
                     {"id": "c", "text": "C", "explanation": "ec"}],
         "answer": ["a", "c"]},
        {"id": "num", "type": "numeric", "question": "What is $2 \\ln 2$?",
         "answer": 1.386, "tolerance": 0.01, "unit": "nats", "explanation": "Because."},
    ],
}


def write_bank(tmp_path, data, name="bank.yml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def quiz(tmp_path):
    return Quiz.from_file(write_bank(tmp_path, BANK))


def test_the_quiz_module_offers_every_name_in_its_all():
    """Notebooks, scripts and the book import from imagegen_lib.practice.quiz, whichever module defines the name."""
    from imagegen_lib.practice import quiz as quiz_module

    missing = [name for name in quiz_module.__all__ if not hasattr(quiz_module, name)]
    assert not missing, f"imagegen_lib.practice.quiz.__all__ names what it does not offer: {missing}"


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

def test_parses_all_three_types(quiz):
    assert [q.type for q in quiz.questions] == ["single", "multiple", "numeric"]
    assert quiz.title == "Test quiz" and quiz.name == "bank" and len(quiz) == 3
    assert quiz["one"].answer == "b"
    assert quiz["many"].answer == frozenset({"a", "c"})
    assert quiz["num"].answer == 1.386 and quiz["num"].tolerance == 0.01
    assert quiz["one"].options[1].explanation == "why b"
    assert quiz["many"].answer_text() == "A and C"
    assert quiz["num"].answer_text() == "1.386 (± 0.01 nats)"


def test_json_bank(tmp_path):
    path = tmp_path / "bank.json"
    path.write_text(json.dumps(BANK))
    assert len(Quiz.from_file(path)) == 3


def test_load_quiz_finds_the_real_bank_from_any_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    real = load_quiz("exercise_a_gan_mnist")
    assert real.source.endswith("book/quizzes/exercise_a_gan_mnist.yml")
    with pytest.raises(FileNotFoundError, match="no_such_chapter"):
        load_quiz("no_such_chapter")


def test_load_quiz_honours_env(tmp_path, monkeypatch):
    write_bank(tmp_path, BANK, "mine.yml")
    monkeypatch.setenv("IMAGEGEN_QUIZ_DIR", str(tmp_path))
    assert load_quiz("mine").name == "mine"


def test_real_bank_is_a_proper_example():
    real = load_quiz("exercise_a_gan_mnist")
    types = [q.type for q in real.questions]
    assert len(real) >= 8 and set(types) == {"single", "multiple", "numeric"}
    for q in real.questions:
        assert all(o.explanation for o in q.options)
        assert q.options or q.explanation
    # 2 ln 2 is in, and the nearest 2-decimal guesses are out
    assert real.grade({"d-loss-equilibrium": "1.386"})["d-loss-equilibrium"].correct
    assert not real.grade({"d-loss-equilibrium": 1.39})["d-loss-equilibrium"].correct
    # the right answer is not always in the same place
    letters = {q.answer_text() for q in real.questions if q.type == "single"}
    assert len(letters) >= 3


# --------------------------------------------------------------------------------------------
# Validation: every malformed bank names the file and the question
# --------------------------------------------------------------------------------------------

def _broken(edit):
    data = copy.deepcopy(BANK)
    edit(data)
    return data


MALFORMED = {
    "missing answer": (lambda d: d["questions"][0].pop("answer"), "one", "no 'answer'"),
    "answer not an option": (lambda d: d["questions"][0].update(answer="z"), "one",
                             "not among the option ids"),
    "multiple answer not an option": (lambda d: d["questions"][1].update(answer=["a", "q"]),
                                      "many", "not among the option ids"),
    "single with a list answer": (lambda d: d["questions"][0].update(answer=["a"]), "one",
                                  "one option id"),
    "duplicate question id": (lambda d: d["questions"][2].update(id="one"), "one",
                              "duplicate question id"),
    "duplicate option id": (lambda d: d["questions"][1]["options"][2].update(id="a"), "many",
                            "duplicate option id"),
    "unknown type": (lambda d: d["questions"][1].update(type="essay"), "many", "unknown type 'essay'"),
    "numeric without tolerance": (lambda d: d["questions"][2].pop("tolerance"), "num",
                                  "needs a 'tolerance'"),
    "negative tolerance": (lambda d: d["questions"][2].update(tolerance=-1), "num", ">= 0"),
    "numeric answer not a number": (lambda d: d["questions"][2].update(answer="two"), "num",
                                    "finite number as 'answer'"),
    "option without explanation": (lambda d: d["questions"][0]["options"][0].pop("explanation"),
                                   "one", "option 'a' needs a non-empty 'explanation'"),
    "misspelt key": (lambda d: d["questions"][2].update(explaination="x"), "num", "explaination"),
    "one option only": (lambda d: d["questions"][0].update(options=d["questions"][0]["options"][:1]),
                        "one", "at least 2"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_bank_names_file_and_question(tmp_path, case):
    edit, qid, message = MALFORMED[case]
    path = write_bank(tmp_path, _broken(edit), "broken_bank.yml")
    with pytest.raises(QuizError) as info:
        Quiz.from_file(path)
    text = str(info.value)
    assert str(path) in text and f"question {qid!r}" in text and message in text, text


def test_question_without_id_is_named_by_position(tmp_path):
    path = write_bank(tmp_path, _broken(lambda d: d["questions"][1].pop("id")))
    with pytest.raises(QuizError, match=r"question '#2': needs an 'id'"):
        Quiz.from_file(path)


def test_invalid_yaml_and_empty_bank(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("questions: [unclosed\n")
    with pytest.raises(QuizError, match=r"bad\.yml: not valid YAML"):
        Quiz.from_file(bad)
    with pytest.raises(QuizError, match="'questions' is empty"):
        Quiz.from_file(write_bank(tmp_path, {"questions": []}))


# --------------------------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------------------------

def test_single_choice(quiz):
    assert quiz.grade({"one": "b"})["one"].correct
    wrong = quiz.grade({"one": "a"})["one"]
    assert wrong.answered and not wrong.correct and wrong.feedback == "Not quite: the answer is B."
    blank = quiz.grade({})["one"]
    assert not blank.answered and not blank.correct and blank.feedback == UNANSWERED
    with pytest.raises(ValueError, match="no option"):
        quiz.grade({"one": "zz"})


def test_multiple_choice_is_all_or_nothing(quiz):
    assert quiz.grade({"many": ["c", "a"]})["many"].correct
    assert not quiz.grade({"many": ["a"]})["many"].correct              # one missing
    assert not quiz.grade({"many": ["a", "b", "c"]})["many"].correct    # one extra
    assert not quiz.grade({"many": []})["many"].answered


@pytest.mark.parametrize("given, correct", [
    (1.386, True), (1.376, True), (1.396, True),              # the edges count ...
    ("1.396", True), (" 1.376 ", True), ("13.86e-1", True),
    (1.3961, False), (1.3759, False), (1.397, False),         # ... a hair beyond does not
    (2, False), (float("nan"), False), (float("inf"), False),
])
def test_numeric_tolerance_edges(quiz, given, correct):
    r = quiz.grade({"num": given})["num"]
    assert r.answered and r.correct is correct


@pytest.mark.parametrize("text", ["1,386", "nan", "inf", "1_000", "two", "1.3.8"])
def test_numeric_rejects_what_is_not_a_number(quiz, text):
    r = quiz.grade({"num": text})["num"]
    assert r.answered and not r.correct and r.feedback == NOT_A_NUMBER


def test_tolerance_zero_means_exact(tmp_path):
    data = _broken(lambda d: d["questions"][2].update(answer=3, tolerance=0))
    q = Quiz.from_file(write_bank(tmp_path, data))
    assert q.grade({"num": "3"})["num"].correct and not q.grade({"num": 3.001})["num"].correct


def test_result_score_and_unknown_question(quiz):
    result = quiz.grade({"one": "b", "many": ["a"], "num": "1.39"})
    assert (result.score, result.total) == (2, 3)
    assert result.summary() == "Score: 2 / 3"
    with pytest.raises(ValueError, match="no question"):
        quiz.grade({"nope": 1})


# --------------------------------------------------------------------------------------------
# Static HTML: escaped, self-contained, unique per instance
# --------------------------------------------------------------------------------------------

EVIL = "<script>alert('x')</script>"


def test_bank_text_is_escaped_but_math_is_kept(tmp_path):
    data = _broken(lambda d: (
        d["questions"][0].update(question=f"Really {EVIL} and $a<b$ and `<b>`"),
        d["questions"][0]["options"][0].update(text='<img src=x onerror="alert(1)">',
                                               explanation=EVIL),
        d["questions"][1]["options"][0].update(id="</script><script>alert(2)//")))
    data["questions"][1]["answer"] = ["</script><script>alert(2)//", "c"]
    page = Quiz.from_file(write_bank(tmp_path, data)).to_html()
    assert "alert('x')</script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page or \
        "&lt;script&gt;alert('x')&lt;/script&gt;" in page
    assert len(re.findall(r"<script", page)) == 2       # the answer key and the grader, nothing else
    assert page.count("</script>") == 2
    assert r'<span class="math notranslate nohighlight">\(a&lt;b\)</span>' in page
    assert "<code>&lt;b&gt;</code>" in page


def test_widget_text_keeps_dollar_math(quiz):
    assert render_inline("a $x<1$ b", "dollar") == "a $x&lt;1$ b"
    assert render_text("p1\n\n```\nif a<b:\n```\n\n**bold** and \\$5") == (
        "<p>p1</p>\n<pre><code>if a&lt;b:</code></pre>\n<p><strong>bold</strong> and $5</p>")


def test_static_html_makes_no_external_requests(quiz):
    page = load_quiz("exercise_a_gan_mnist").to_html() + quiz.to_html()
    assert not re.search(r"https?:|\bsrc\s*=|\bhref\s*=|url\(|@import|['\"]//|<link|<iframe",
                         page, re.I)


def test_static_html_ids_are_unique_per_instance(quiz):
    first, second = quiz.to_html(), quiz.to_html()
    ids = [re.search(r'<div class="ig-quiz" id="([^"]+)"', h).group(1) for h in (first, second)]
    assert ids[0] != ids[1]
    for uid, page in zip(ids, (first, second)):
        assert page.count(f'id="{uid}"') == 1 and page.rstrip().endswith(f'}})("{uid}");\n</script></div>')


def test_answer_key_matches_python_grading(quiz):
    page = quiz.to_html()
    key = json.loads(re.search(r'class="ig-quiz-key">(.*?)</script>', page).group(1))
    assert key["number"] == NUMBER_PATTERN and key["total"] == 3
    by_id = {q["id"]: q for q in key["questions"]}
    assert by_id["one"]["answer"] == ["b"] and by_id["many"]["answer"] == ["a", "c"]
    assert by_id["num"]["tolerance"] == 0.01
    assert by_id["one"]["wrong"] == quiz.grade({"one": "a"})["one"].feedback


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_static_script_is_valid_javascript(quiz, tmp_path):
    script = re.findall(r"<script>(.*?)</script>", quiz.to_html(), re.S)[0]
    (tmp_path / "quiz.js").write_text(script)
    subprocess.run(["node", "--check", str(tmp_path / "quiz.js")], check=True)


def test_mimebundle_carries_both_versions(quiz):
    bundle = quiz._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "application/vnd.jupyter.widget-view+json"}
    assert bundle["text/plain"] == "<Quiz 'bank': 3 questions>"
    assert bundle["text/html"].startswith('<div class="ig-quiz"')


# --------------------------------------------------------------------------------------------
# Live widget: "click" by setting values and calling the buttons' handlers
# --------------------------------------------------------------------------------------------

def test_widget_grades_through_the_check_button(quiz):
    w = quiz.widget()
    w.choices["one"]["a"].value = True                    # wrong first
    w.choices["many"]["a"].value = w.choices["many"]["c"].value = True
    w.numbers["num"].value = "1.39"
    w.check_button.click()
    assert w.last_result == quiz.grade({"one": "a", "many": ["a", "c"], "num": "1.39"})
    assert "Score: 2 / 3" in w.score.value
    assert "Not quite: the answer is B." in w.feedback["one"].value
    assert "Correct." in w.feedback["many"].value and "Correct." in w.feedback["num"].value

    w.choices["one"]["b"].value = True                    # single choice: switches, not adds
    assert not w.choices["one"]["a"].value
    w.check_button.click()
    assert "Score: 3 / 3" in w.score.value and "Correct." in w.feedback["one"].value


def test_widget_explanations_and_reset(quiz):
    w = quiz.widget()
    assert w.explain_buttons["one"].disabled               # nothing to explain before answering
    w.choices["one"]["b"].value = True
    w.check_button.click()
    assert not w.explain_buttons["one"].disabled and w.explain_buttons["num"].disabled
    assert w.explanations["one"].layout.display == "none"
    w.explain_buttons["one"].click()
    assert w.explanations["one"].layout.display is None
    assert "why a" in w.explanations["one"].value and "$\\beta_1$" in w.explanations["one"].value
    w.reset_button.click()
    assert w.answers() == {"one": None, "many": [], "num": ""}
    assert w.score.value == "" and w.feedback["one"].value == "" and w.last_result is None
    assert w.explanations["one"].layout.display == "none" and w.explain_buttons["one"].disabled


def test_display_builds_the_form_only_when_a_frontend_shows_it(quiz):
    """A headless run (book build, nbval) must not store hundreds of widget models."""
    from ipywidgets.widgets.widget import _instances

    before = len(_instances)
    bundle = quiz._repr_mimebundle_()
    assert len(_instances) - before == 2                  # the outer VBox and its Layout
    lazy = QuizWidget(quiz, lazy=True)
    assert lazy.box.children == () and lazy.box._view_count == 0
    lazy.box._view_count = 1                               # what a frontend does on display
    assert len(lazy.box.children) == len(quiz) + 2 and lazy.check_button is not None
    lazy.choices["one"]["b"].value = True
    lazy.check_button.click()
    assert "Score: 1 / 3" in lazy.score.value
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"]


# --------------------------------------------------------------------------------------------
# The book's banks and chapters: every chapter ends with its quiz, and the stored output is current
# --------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
BANKS = sorted(p.stem for p in (REPO / "book" / "quizzes").glob("*.yml"))


def _toc_chapters() -> list[str]:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    return [c["file"] for part in toc["parts"] for c in part.get("chapters", [])
            if c["file"].startswith("notebooks/")]


@pytest.mark.parametrize("name", BANKS)
def test_every_bank_is_a_proper_quiz(name):
    bank = load_quiz(name)
    assert len(bank) >= 8, f"{name}: {len(bank)} questions, a chapter quiz needs at least 8"
    assert {q.type for q in bank.questions} == {"single", "multiple", "numeric"}, \
        f"{name}: mix single, multiple and numeric questions"
    for q in bank.questions:
        assert all(o.explanation for o in q.options) and (q.options or q.explanation)
    # the right answer is not always in the same place
    assert len({q.answer_text() for q in bank.questions if q.type == "single"}) >= 3


@pytest.mark.parametrize("chapter", _toc_chapters())
def test_every_chapter_ends_with_its_quiz_with_a_current_output(chapter):
    name = Path(chapter).name
    fix = f"add book/quizzes/{name}.yml and run: python scripts/add_quiz_cell.py {chapter}.ipynb"
    nb = json.loads((REPO / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    last = [c for c in nb["cells"] if c["cell_type"] == "code"][-1]
    assert f'load_quiz("{name}")' in "".join(last["source"]), f"{chapter} has no quiz at its end: {fix}"
    assert "remove-input" in last["metadata"].get("tags", []), "the book shows the quiz, not its code"

    data = next(o["data"] for o in last["outputs"] if "data" in o)
    stored = "".join(data["text/html"])
    current = load_quiz(name).to_html()
    instance = re.compile(rf"ig-quiz-{re.escape(name)}-\d+")
    assert instance.sub("ID", stored) == instance.sub("ID", current), \
        f"{chapter}: the stored quiz output is stale (bank or renderer changed): run " \
        f"python scripts/add_quiz_cell.py {chapter}.ipynb"
    # the live widget's model is in the notebook's widget state, so JupyterLab can show it
    state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] in state


def test_the_static_quiz_embeds_the_css_and_js_files_byte_for_byte():
    from importlib.resources import files

    assets = files("imagegen_lib.practice").joinpath("quiz_assets")
    css = assets.joinpath("quiz.css").read_bytes().decode("utf-8")
    js = assets.joinpath("quiz.js").read_bytes().decode("utf-8")
    page = static_html(load_quiz("q1_what_is_a_gan"), "ig-quiz-test")
    assert f"<style>{css}</style>" in page
    assert "<script>" + js.replace("__QUIZ_ID__", '"ig-quiz-test"') + "</script>" in page
