#!/usr/bin/env python3
"""Load every page of the built book in headless Chromium and check that it works offline.

    python tests/browser/check_book.py _build/html /tmp/shots
    python tests/browser/check_book.py _build/html /tmp/shots --page book/intro.html --page search.html

Serves BUILD_DIR on 127.0.0.1 (an ephemeral port) and, for each page, fails if

* the page requests anything from a host other than 127.0.0.1 (such requests are recorded, then
  blocked, so the check gives the same answer with or without a network);
* a local request fails or returns HTTP >= 400;
* the browser console logs an error, or a script throws;
* the page has TeX math but MathJax did not typeset it (no ``mjx-container``, or an ``mjx-merror``);
* the page embeds ipywidgets views but any of them did not render into a widget;
* an ``<img>`` did not load.

It also runs a query on search.html (Sphinx's built-in search must find something) and saves a
full-page PNG screenshot of every page into OUT_DIR. Exit status: 0 all good, 1 a check failed,
2 bad usage. Stdlib + Playwright (``pip install playwright``); the browser is the system
Chromium (``--chromium``, default ``$CHROMIUM`` or /usr/bin/chromium), so
``playwright install`` is not needed.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
]
LOCAL_HOSTS = {"127.0.0.1"}


def block_external_requests(context, external: list) -> None:
    """Let the browser reach 127.0.0.1 (and data:/blob: URLs) only; record and abort anything else.

    An offline book must make no request to the network: each blocked URL is appended to ``external``
    for the caller to report."""
    def route(r):
        host = urlsplit(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:", "about:")) or host in LOCAL_HOSTS:
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort("blockedbyclient")

    context.route("**/*", route)
# Chromium fetches these on its own for every site; a static book has no favicon.
IGNORED_PATHS = {"/favicon.ico"}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature from the base class
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def find_pages(build: Path) -> list[str]:
    skip = {"_static", "_sources", "_images", ".doctrees", "_downloads"}
    pages = []
    for p in sorted(build.rglob("*.html")):
        rel = p.relative_to(build)
        if rel.parts[0] in skip:
            continue
        pages.append(rel.as_posix())
    return pages


JS_STATE = """
async () => {
  const out = {};
  out.mathNodes = document.querySelectorAll('div.math, span.math').length;
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  out.mathjax = document.querySelectorAll('mjx-container').length;
  out.mathErrors = document.querySelectorAll('mjx-merror').length;
  out.widgetViews = document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]').length;
  out.widgetsRendered = Array.from(document.querySelectorAll('.widget-subarea'))
      .filter(e => e.querySelector('.jupyter-widgets, .lm-Widget')).length;
  out.widgetKinds = Array.from(new Set(Array.from(
      document.querySelectorAll('.widget-subarea .jupyter-widgets, .widget-subarea .lm-Widget'))
      .flatMap(e => Array.from(e.classList)).filter(c => c.startsWith('widget-'))))
      .sort();
  out.brokenImages = Array.from(document.images)
      .filter(i => i.complete && i.naturalWidth === 0).map(i => i.getAttribute('src'));
  out.images = document.images.length;
  return out;
}
"""


def check_page(context, base: str, rel: str, shots: Path, timeout_ms: int) -> tuple[list[str], dict]:
    problems: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"uncaught exception: {e}"))

    def on_response(resp):
        path = urlsplit(resp.url).path
        if resp.status >= 400 and path not in IGNORED_PATHS:
            problems.append(f"HTTP {resp.status}: {resp.url}")

    def on_failed(req):
        if urlsplit(req.url).hostname in LOCAL_HOSTS and urlsplit(req.url).path not in IGNORED_PATHS:
            problems.append(f"request failed ({req.failure}): {req.url}")

    page.on("response", on_response)
    page.on("requestfailed", on_failed)

    page.goto(f"{base}/{rel}", wait_until="load", timeout=timeout_ms)
    try:
        page.wait_for_load_state("networkidle", timeout=timeout_ms)
    except Exception:  # noqa: BLE001 - a page that never idles is reported, not fatal
        problems.append("network never went idle")

    state = page.evaluate(JS_STATE)
    if state["widgetViews"] > state["widgetsRendered"]:
        # embed-amd.js renders on window load; give slow machines a moment before failing.
        try:
            page.wait_for_function(
                """n => Array.from(document.querySelectorAll('.widget-subarea'))
                       .filter(e => e.querySelector('.jupyter-widgets, .lm-Widget')).length >= n""",
                arg=state["widgetViews"], timeout=timeout_ms)
        except Exception:  # noqa: BLE001
            pass
        state = page.evaluate(JS_STATE)

    if state["mathNodes"] and not state["mathjax"]:
        problems.append(f"{state['mathNodes']} math nodes but MathJax rendered none")
    if state["mathErrors"]:
        problems.append(f"MathJax reported {state['mathErrors']} TeX error(s)")
    if state["widgetViews"] > state["widgetsRendered"]:
        problems.append(f"{state['widgetViews']} widget view(s) embedded, "
                        f"{state['widgetsRendered']} rendered")
    for src in state["brokenImages"]:
        problems.append(f"image did not load: {src}")

    if rel == "search.html":
        page.goto(f"{base}/search.html?q=generator", wait_until="load", timeout=timeout_ms)
        try:
            page.wait_for_selector("#search-results li, ul.search li", timeout=timeout_ms)
        except Exception:  # noqa: BLE001
            problems.append("built-in search for 'generator' found nothing")

    shot = shots / (rel.replace("/", "__").removesuffix(".html") + ".png")
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    return problems, state


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build_dir", type=Path, help="the built site, e.g. _build/html")
    ap.add_argument("out_dir", type=Path, help="where to write one PNG screenshot per page")
    ap.add_argument("--page", action="append", default=None,
                    help="page to check, relative to BUILD_DIR (repeatable; default: every page)")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                    help="Chromium executable (default: $CHROMIUM or /usr/bin/chromium)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per page load / wait")
    args = ap.parse_args(argv)

    if not (args.build_dir / "index.html").is_file():
        print(f"check_book: {args.build_dir}/index.html not found; build the book first (make book)",
              file=sys.stderr)
        return 2
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("check_book: needs Playwright: pip install playwright", file=sys.stderr)
        return 2
    if not Path(args.chromium).is_file():
        print(f"check_book: no Chromium at {args.chromium} (apt-get install chromium, or --chromium)",
              file=sys.stderr)
        return 2

    args.out_dir.mkdir(parents=True, exist_ok=True)
    pages = args.page or find_pages(args.build_dir)
    server, base = serve(args.build_dir.resolve())
    external: list[str] = []
    failures = 0
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=LAUNCH_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900},
                                          service_workers="block")

            block_external_requests(context, external)
            for rel in pages:
                n_external = len(external)
                problems, state = check_page(context, base, rel, args.out_dir, int(args.timeout * 1000))
                problems += [f"external request: {u}" for u in external[n_external:]]
                # a blocked external request also shows up as a failed request / console error;
                # report it once, as what it is.
                problems = [p for p in problems
                            if not any(u in p for u in external[n_external:]) or p.startswith("external")]
                summary = (f"math {state['mathjax']}/{state['mathNodes']}, "
                           f"widgets {state['widgetsRendered']}/{state['widgetViews']}"
                           + (f" {state['widgetKinds']}" if state["widgetKinds"] else "")
                           + f", images {state['images']}")
                print(f"{'FAIL' if problems else 'ok  '} {rel}: {summary}")
                for p in problems:
                    print(f"       - {p}")
                failures += bool(problems)
            browser.close()
    finally:
        server.shutdown()

    print(f"check_book: {len(pages)} page(s), {failures} failing, "
          f"{len(external)} external request(s); screenshots in {args.out_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
