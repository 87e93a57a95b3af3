#!/usr/bin/env python3
"""Answer every self-check quiz of the built book in headless Chromium, as a reader would.

    python tests/browser/check_quizzes.py _build/html test-artifacts/browser-quiz

Serves BUILD_DIR on 127.0.0.1 (as check_book.py does: anything else is blocked and reported) and
fails if

* a chapter page (every page under ``notebooks/``) has no quiz, or a quiz has fewer than 8
  questions;
* a quiz in the page does not match its bank in ``book/quizzes/`` (question ids, answers): the
  notebook's stored output is stale, so re-run ``scripts/add_quiz_cell.py`` on it;
* the quiz's math was not typeset by MathJax (no ``mjx-container``, a TeX error, or raw ``\\(``
  left in the text);
* clicking, for one question of each type, a *wrong* answer and "Check answers" does not show
  "✗ Not quite: the answer is ..." (the bank's own feedback string) and a score of 0; or then
  clicking the *right* answer does not show "✓ Correct." with the score going up by one;
* the explanation of an answered question does not open, or "Reset" does not clear the quiz;
* the browser logs a console error or a script throws.

Writes, into OUT_DIR, screenshots of each quiz: the whole quiz after grading with explanations
open (``quiz_<chapter>.png``) and one single-choice question just after a wrong answer
(``quiz_<chapter>_wrong_answer.png``); and one of a figure page (``figure_page.png``, the first
figure of Q1 scrolled into view). Exit status: 0 all good, 1 a check failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_book import LAUNCH_ARGS, block_external_requests, find_pages, serve  # noqa: E402

MIN_QUESTIONS = 8
CHAPTER_PREFIX = "notebooks/"

# Everything the test reads from a quiz, in one round trip.
JS_QUIZZES = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  return Array.from(document.querySelectorAll('div.ig-quiz')).map(root => {
    const key = JSON.parse(root.querySelector('script.ig-quiz-key').textContent);
    const visible = root.getBoundingClientRect().height > 0;
    const prompts = Array.from(root.querySelectorAll('.ig-quiz-prompt, .ig-quiz-opt'));
    return {
      id: root.id,
      key: key,
      visible: visible,
      questions: root.querySelectorAll('li.ig-quiz-q').length,
      mathSource: root.querySelectorAll('.ig-quiz-prompt span.math, .ig-quiz-opt span.math').length,
      mathRendered: root.querySelectorAll('.ig-quiz-prompt mjx-container, .ig-quiz-opt mjx-container').length,
      mathErrors: root.querySelectorAll('mjx-merror').length,
      rawTex: prompts.some(e => /\\\\\\(|\\\\\\[/.test(e.innerText)),
    };
  });
}
"""


class Checker:
    """Collects failures instead of stopping at the first, so one run reports everything."""

    def __init__(self):
        self.failures: list[str] = []

    def expect(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok


def bank_for(quiz_id: str):
    """``ig-quiz-<name>-<n>`` -> the bank ``book/quizzes/<name>.yml`` (None if there is none)."""
    from imagegen_lib.practice.quiz import load_quiz

    name = quiz_id.removeprefix("ig-quiz-").rsplit("-", 1)[0]
    try:
        return load_quiz(name)
    except FileNotFoundError:
        return None


def wrong_choice(question: dict) -> list[str]:
    """A wrong answer for a choice question: the first option that is not right (for multiple
    choice: that option plus all the right ones, still wrong as a set)."""
    options = question["options"]
    wrong = next(o for o in options if o not in question["answer"])
    return [wrong] if question["type"] == "single" else [wrong, *question["answer"]]


def set_answer(li, question: dict, answer) -> None:
    """Clear a question and answer it the way a reader does: clicking labels, typing numbers."""
    if question["type"] == "numeric":
        li.locator("input.ig-quiz-num").fill(str(answer))
        return
    if question["type"] == "multiple":  # radio buttons replace each other by themselves
        checked = li.locator("input.ig-quiz-choice:checked")
        while checked.count():  # (the locator re-evaluates: uncheck the first until none is left)
            checked.first.uncheck()
    for option in answer:
        li.locator(f"label.ig-quiz-opt:has(input[value='{option}'])").click()


def exercise_quiz(page, quiz: dict, bank, shots: Path, check: Checker, shot_name: str) -> int:
    """Wrong then right, for the first question of each type; returns the number of clicks."""
    root = page.locator(f"#{quiz['id']}")
    total = quiz["key"]["total"]
    score = root.locator(".ig-quiz-actions .ig-quiz-score")
    check_button = root.locator("button.ig-quiz-check")
    items = root.locator("li.ig-quiz-q")
    first_of_type: dict[str, int] = {}
    for i, q in enumerate(quiz["key"]["questions"]):
        first_of_type.setdefault(q["type"], i)
    where = f"{quiz['id']}"

    right_so_far, clicks = 0, 0
    for qtype, index in sorted(first_of_type.items(), key=lambda kv: kv[1]):
        q = dict(quiz["key"]["questions"][index])
        li = items.nth(index)
        feedback = li.locator(".ig-quiz-feedback")
        if qtype != "numeric":
            q["options"] = li.locator("input.ig-quiz-choice").evaluate_all(
                "els => els.map(e => e.value)")
            wrong, right = wrong_choice(q), q["answer"]
        else:
            # well outside the tolerance, but a valid number
            wrong, right = q["answer"] + 10 * q["tolerance"] + 1, q["answer"]
        expected_wrong = bank[q["id"]].wrong_feedback() if bank else q["wrong"]

        set_answer(li, q, wrong)
        check_button.click()
        clicks += 2
        check.expect(feedback.inner_text().strip() == f"✗ {expected_wrong}",
                     f"{where} {q['id']} ({qtype}), wrong answer {wrong}: feedback "
                     f"{feedback.inner_text()!r}, expected '✗ {expected_wrong}'")
        check.expect("is-wrong" in (feedback.get_attribute("class") or ""),
                     f"{where} {q['id']}: wrong-answer feedback is not styled as wrong")
        check.expect(score.inner_text().strip() == f"Score: {right_so_far} / {total}",
                     f"{where} after a wrong answer to {q['id']}: score {score.inner_text()!r}, "
                     f"expected 'Score: {right_so_far} / {total}'")
        if qtype != "numeric":
            check.expect(li.locator("label.ig-quiz-opt.is-chosen-wrong").count() >= 1,
                         f"{where} {q['id']}: the wrongly chosen option is not marked")
        if qtype == "single":
            element_shot(page, li, shots / shot_name.replace(".png", "_wrong_answer.png"))

        set_answer(li, q, right)
        check_button.click()
        clicks += 2
        right_so_far += 1
        check.expect(feedback.inner_text().strip() == "✓ Correct.",
                     f"{where} {q['id']} ({qtype}), right answer {right}: feedback "
                     f"{feedback.inner_text()!r}, expected '✓ Correct.'")
        check.expect(score.inner_text().strip() == f"Score: {right_so_far} / {total}",
                     f"{where} after the right answer to {q['id']}: score {score.inner_text()!r}, "
                     f"expected 'Score: {right_so_far} / {total}'")

        explain = li.locator("details.ig-quiz-explain")
        if check.expect(explain.is_visible(), f"{where} {q['id']}: no explanation after answering"):
            explain.locator("summary").click()
            clicks += 1
            body = explain.locator(".ig-quiz-explain-body")
            check.expect(body.is_visible() and len(body.inner_text().strip()) > 20,
                         f"{where} {q['id']}: the explanation did not open")

    # The explanations hold math too: wait for MathJax to typeset what was revealed.
    page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise.then(() => 1) : 0")
    element_shot(page, root, shots / shot_name)

    root.locator("button.ig-quiz-reset").click()
    clicks += 1
    check.expect(score.inner_text().strip() == "", f"{where}: Reset left the score {score.inner_text()!r}")
    check.expect(root.locator("input.ig-quiz-choice:checked").count() == 0,
                 f"{where}: Reset left options checked")
    check.expect(all(not f.strip() for f in root.locator(".ig-quiz-feedback").all_inner_texts()),
                 f"{where}: Reset left feedback")
    return clicks


def element_shot(page, element, path: Path) -> None:
    """A screenshot of one element, cut from a full-page capture taken at scroll position 0: the
    theme's sticky header is drawn where the page is scrolled to, so any other position (and
    Playwright's element screenshots, which scroll) puts it over the element."""
    # At scroll 0 the sticky header sits at the top of the page, above the element.
    page.evaluate("() => { window.scrollTo(0, 0); if (document.activeElement) document.activeElement.blur(); }")
    box = element.evaluate("""e => { const r = e.getBoundingClientRect();
        return {x: r.left + window.scrollX, y: r.top + window.scrollY,
                width: r.width, height: r.height}; }""")
    page.screenshot(path=str(path), full_page=True, clip=box)


def check_bank_matches(quiz: dict, bank, check: Checker) -> None:
    where = quiz["id"]
    if not check.expect(bank is not None, f"{where}: no bank in book/quizzes for this quiz"):
        return
    page_ids = [q["id"] for q in quiz["key"]["questions"]]
    bank_ids = [q.id for q in bank.questions]
    stale = "the notebook's stored quiz output is stale: run scripts/add_quiz_cell.py on it"
    check.expect(page_ids == bank_ids, f"{where}: questions {page_ids} != bank {bank_ids} ({stale})")
    for q in quiz["key"]["questions"]:
        if q["id"] in bank_ids:
            expected = bank[q["id"]]
            answer = expected.answer if q["type"] == "numeric" else sorted(expected.answer_ids())
            check.expect(q["answer"] == answer, f"{where} {q['id']}: answer {q['answer']} != bank "
                                                f"{answer} ({stale})")


def screenshot_figure(page, base: str, pages: list[str], shots: Path, timeout_ms: int,
                      preferred: str) -> str | None:
    """The first figure of ``preferred`` (else of the first chapter page that has one), scrolled
    into view with its surroundings, at viewport size."""
    for rel in sorted(pages, key=lambda r: r != preferred):
        if not rel.startswith(CHAPTER_PREFIX):
            continue
        page.goto(f"{base}/{rel}", wait_until="load", timeout=timeout_ms)
        figure = page.locator(".cell_output img").first
        if figure.count():
            figure.scroll_into_view_if_needed()
            page.evaluate("() => window.scrollBy(0, -120)")
            page.screenshot(path=str(shots / "figure_page.png"))
            return rel
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build_dir", type=Path, help="the built site, e.g. _build/html")
    ap.add_argument("out_dir", type=Path, help="where to write the screenshots")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per page load / wait")
    ap.add_argument("--figure-page", default="notebooks/q1_what_is_a_gan.html",
                    help="page whose first figure is screenshot (default: %(default)s)")
    args = ap.parse_args(argv)

    if not (args.build_dir / "index.html").is_file():
        print(f"check_quizzes: {args.build_dir}/index.html not found; build the book first "
              "(make book)", file=sys.stderr)
        return 2
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("check_quizzes: needs Playwright: pip install playwright", file=sys.stderr)
        return 2
    if not Path(args.chromium).is_file():
        print(f"check_quizzes: no Chromium at {args.chromium} (apt-get install chromium, or "
              "--chromium)", file=sys.stderr)
        return 2

    args.out_dir.mkdir(parents=True, exist_ok=True)
    timeout_ms = int(args.timeout * 1000)
    # Pages that carry a quiz, plus every chapter page (which must): the others are
    # check_book.py's business, and skipping them halves the run.
    pages = [rel for rel in find_pages(args.build_dir) if rel.startswith(CHAPTER_PREFIX)
             or 'class="ig-quiz"' in (args.build_dir / rel).read_text(encoding="utf-8")]
    server, base = serve(args.build_dir.resolve())
    check = Checker()
    external: list[str] = []
    n_quizzes = n_clicks = 0
    start = time.perf_counter()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=LAUNCH_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900},
                                          service_workers="block")
            context.set_default_timeout(timeout_ms)

            block_external_requests(context, external)
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and check.expect(
                False, f"console error on {page.url}: {m.text}"))
            page.on("pageerror", lambda e: check.expect(False, f"uncaught exception on {page.url}: {e}"))

            for rel in pages:
                page.goto(f"{base}/{rel}", wait_until="load", timeout=timeout_ms)
                page.wait_for_load_state("networkidle", timeout=timeout_ms)
                if urlsplit(page.url).path != f"/{rel}":  # index.html redirects to the intro
                    continue
                quizzes = page.evaluate(JS_QUIZZES)
                if rel.startswith(CHAPTER_PREFIX):
                    check.expect(bool(quizzes), f"{rel}: a chapter without a quiz (add "
                                                "book/quizzes/<chapter>.yml and run "
                                                "scripts/add_quiz_cell.py on the notebook)")
                for quiz in quizzes:
                    where = f"{rel} #{quiz['id']}"
                    check.expect(quiz["visible"], f"{where}: quiz not rendered (zero height)")
                    check.expect(quiz["questions"] == quiz["key"]["total"] >= MIN_QUESTIONS,
                                 f"{where}: {quiz['questions']} questions rendered, "
                                 f"{quiz['key']['total']} in its key (need >= {MIN_QUESTIONS})")
                    check.expect(quiz["mathSource"] == 0 or quiz["mathRendered"] > 0,
                                 f"{where}: {quiz['mathSource']} math spans, none typeset")
                    check.expect(quiz["mathErrors"] == 0, f"{where}: MathJax TeX errors")
                    check.expect(not quiz["rawTex"], f"{where}: raw TeX delimiters in the text")
                    bank = bank_for(quiz["id"])
                    check_bank_matches(quiz, bank, check)
                    shot = f"quiz_{Path(rel).stem}.png"
                    n_clicks += exercise_quiz(page, quiz, bank, args.out_dir, check, shot)
                    n_quizzes += 1
                    print(f"quiz {rel}: quiz {quiz['id']}, {quiz['questions']} questions, "
                          f"math {quiz['mathRendered']}/{quiz['mathSource']} typeset -> {shot}")
            figure = screenshot_figure(page, base, pages, args.out_dir, timeout_ms, args.figure_page)
            check.expect(figure is not None, "no chapter page with a figure to screenshot")
            browser.close()
    finally:
        server.shutdown()

    for url in external:
        check.expect(False, f"external request: {url}")
    for failure in check.failures:
        print(f"FAIL {failure}")
    print(f"check_quizzes: {n_quizzes} quiz(zes) on {len(pages)} page(s), {n_clicks} clicks, "
          f"{len(check.failures)} failure(s), {time.perf_counter() - start:.0f} s; screenshots "
          f"(quizzes, figure page: {figure}) in {args.out_dir}")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
