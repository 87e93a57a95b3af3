#!/usr/bin/env python3
"""A chapter's quiz widget in a real JupyterLab, graded by its Python callback.

    python tests/browser/check_lab.py test-artifacts/browser-lab [--chapter q1_what_is_a_gan]

Writes a one-cell notebook (the chapter's quiz cell: ``load_quiz("<chapter>")``, no stored
output) into a temporary folder, starts ``jupyter lab`` there on 127.0.0.1 with the token off and
fresh settings, opens the notebook in headless Chromium, runs the cell and answers the bank's
first single-choice question, wrong and then right. Fails unless

* the quiz renders as the ipywidgets form (and *not* as the static HTML version: in JupyterLab
  nothing may grade in the page's own JavaScript);
* "Check answers" after the wrong option shows ``✗ <the bank's wrong-answer feedback>`` and
  ``Score: 0 / N``; after the right one ``✓ Correct.`` and ``Score: 1 / N``. The form has no
  grading code in the browser, so this text can only come from ``Quiz.grade`` in the kernel;
* ticking the right option unticks the wrong one (the single-choice rule runs in Python too);
* "Show explanation" opens the explanation.

Requests to any host other than 127.0.0.1 are blocked and listed. Saves screenshots of the graded
question and of the page into OUT_DIR. Exit status: 0 all good, 1 a check failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_book import LAUNCH_ARGS, block_external_requests  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(folder: Path, chapter: str) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(
        f'from imagegen_lib.practice.quiz import load_quiz\nload_quiz("{chapter}")')]
    path = folder / "quiz.ipynb"
    nbformat.write(nb, path)
    return path


def start_lab(folder: Path, port: int, log) -> subprocess.Popen:
    """JupyterLab on loopback, token and password off, nothing fetched from the internet
    (no news feed, no update check), settings and workspaces in the temporary folder."""
    env = dict(os.environ)
    for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                     ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")]:
        env[var] = str(folder / ".jupyter" / sub)
    env.setdefault("OMP_NUM_THREADS", "1")
    # No "get notified about Jupyter news?" toast over the screenshots.
    news = folder / ".jupyter" / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True, exist_ok=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={folder}",
           "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    return subprocess.Popen(cmd, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for_server(base: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/api/status", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"jupyter lab did not answer on {base} within {timeout:.0f} s")


def stop_lab(proc: subprocess.Popen) -> None:
    """SIGTERM to the server we started: it shuts its kernels down and exits (kill if it hangs)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def grade_in_lab(page, base: str, quiz, out_dir: Path, expect) -> float:
    """Open the notebook, run the quiz cell, answer one single-choice question wrong then right.
    Returns the time (perf_counter) at which the widget was live."""
    index, question = next((i, q) for i, q in enumerate(quiz.questions, 1) if q.type == "single")
    option_ids = [o.id for o in question.options]
    right = question.answer
    wrong = next(o for o in option_ids if o != right)

    page.goto(f"{base}/lab/tree/quiz.ipynb", wait_until="load")
    editor = page.locator(".jp-Notebook .jp-Cell .jp-InputArea-editor").first
    editor.wait_for(state="visible")
    # A cell run before the kernel is connected is dropped: wait for the status bar's "Idle".
    page.locator(".jp-StatusBar-Widget").get_by_text(re.compile(r"\|\s*Idle")).wait_for()
    editor.click()
    page.keyboard.press("Shift+Enter")  # run the quiz cell
    check = page.get_by_role("button", name="Check answers")
    check.wait_for(state="visible")  # the kernel built the form: the widget is live
    t_widget = time.perf_counter()

    expect(page.locator("div.ig-quiz").count() == 0,
           "the static HTML quiz is in the page: JupyterLab must show the widget")
    box = page.locator(".widget-vbox .widget-vbox").filter(has_text=f"Question {index}.")
    boxes = box.locator("input[type=checkbox]")
    expect(boxes.count() == len(option_ids),
           f"question {index} shows {boxes.count()} options, the bank has {len(option_ids)}")
    score = page.locator(".widget-html").filter(has_text="Score:")
    feedback = box.locator(".widget-html").first

    def shows(locator) -> bool:
        try:
            locator.wait_for(state="visible")
            return True
        except Exception:  # noqa: BLE001 - the caller reports what was shown instead
            return False

    boxes.nth(option_ids.index(wrong)).check()
    check.click()
    expected = f"✗ {question.wrong_feedback()}"
    shows(box.get_by_text(expected))
    expect(feedback.inner_text().strip() == expected,
           f"wrong answer: feedback {feedback.inner_text()!r}, expected {expected!r}")
    expect(score.inner_text().strip() == f"Score: 0 / {len(quiz)}",
           f"wrong answer: {score.inner_text()!r}, expected 'Score: 0 / {len(quiz)}'")
    box.screenshot(path=str(out_dir / "lab_quiz_wrong_answer.png"))

    boxes.nth(option_ids.index(right)).check()
    # The single-choice rule lives in the kernel: ticking one option unticks the other there.
    page.wait_for_function("el => !el.checked",
                           arg=boxes.nth(option_ids.index(wrong)).element_handle())
    check.click()
    shows(box.get_by_text("✓ Correct."))
    expect(feedback.inner_text().strip() == "✓ Correct.",
           f"right answer: feedback {feedback.inner_text()!r}, expected '✓ Correct.'")
    expect(score.inner_text().strip() == f"Score: 1 / {len(quiz)}",
           f"right answer: {score.inner_text()!r}, expected 'Score: 1 / {len(quiz)}'")

    box.get_by_role("button", name="Show explanation").click()
    explanation = next(o.explanation for o in question.options if o.id == right)
    first_words = " ".join(explanation.split()[:4])
    expect(shows(box.get_by_text(first_words).first),
           f"'Show explanation' did not show {first_words!r}...")
    box.screenshot(path=str(out_dir / "lab_quiz_graded.png"))
    box.scroll_into_view_if_needed()
    page.screenshot(path=str(out_dir / "lab_page.png"))
    print(f"check_lab: question {index} ({question.id}): wrong option {wrong.upper()} -> "
          f"{expected!r}; right option {right.upper()} -> '✓ Correct.'")
    return t_widget


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path, help="where to write the screenshots and the server log")
    ap.add_argument("--chapter", default="q1_what_is_a_gan", help="whose quiz (default: %(default)s)")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--timeout", type=float, default=90.0,
                    help="seconds for the server, the kernel and each wait (default: %(default)s)")
    args = ap.parse_args(argv)

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("check_lab: needs Playwright: pip install playwright", file=sys.stderr)
        return 2
    if not Path(args.chromium).is_file():
        print(f"check_lab: no Chromium at {args.chromium}", file=sys.stderr)
        return 2
    from imagegen_lib.practice.quiz import load_quiz

    quiz = load_quiz(args.chapter)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    external: list[str] = []
    console: list[str] = []
    start = time.perf_counter()
    t_server = t_widget = float("nan")

    def expect(ok: bool, message: str) -> None:
        if not ok:
            failures.append(message)

    with tempfile.TemporaryDirectory(prefix="imagegen-lab-") as tmp, \
            open(args.out_dir / "jupyter_lab.log", "w") as log:
        folder = Path(tmp)
        write_notebook(folder, args.chapter)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_lab(folder, port, log)
        try:
            wait_for_server(base, proc, args.timeout)
            t_server = time.perf_counter() - start
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=LAUNCH_ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 1000},
                                              service_workers="block")
                context.set_default_timeout(int(args.timeout * 1000))

                block_external_requests(context, external)
                page = context.new_page()
                page.on("console", lambda m: m.type == "error" and console.append(m.text))
                page.on("pageerror", lambda e: console.append(f"uncaught: {e}"))
                try:
                    t_widget = grade_in_lab(page, base, quiz, args.out_dir, expect) - start
                except Exception as exc:  # noqa: BLE001 - a crash of the check is a failure
                    failures.append(f"{type(exc).__name__}: {' | '.join(str(exc).splitlines()[:6])}")
                    page.screenshot(path=str(args.out_dir / "lab_failure.png"))
                browser.close()
        except Exception as exc:  # noqa: BLE001 - e.g. the server did not start
            failures.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        finally:
            stop_lab(proc)

    for url in external:
        failures.append(f"external request: {url}")
    for message in console:
        print(f"note: console error in JupyterLab: {message[:200]}")
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"check_lab: {args.chapter}'s quiz graded by its Python callback in JupyterLab; server "
          f"up at {t_server:.1f} s, widget live at {t_widget:.1f} s, total "
          f"{time.perf_counter() - start:.1f} s; {len(failures)} failure(s); screenshots and "
          f"jupyter_lab.log in {args.out_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
