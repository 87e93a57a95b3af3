"""Sphinx extension: keep the book's vendored JavaScript local and out of pages that don't need it.

Jupyter Book 1 adds *every* ``.js`` and ``.css`` file under ``_static/`` to every page (a
convenience for a custom stylesheet). For the third-party files that ``scripts/vendor_static.sh``
copies into ``_static/vendor/`` that would put all of MathJax's lazily loaded modules, RequireJS
and the 3.6 MB widget bundle on every page, and load RequireJS before scripts that don't expect
it. This extension removes from ``html_js_files`` / ``html_css_files``:

* everything under ``vendor/`` (MathJax comes in through ``mathjax_path`` on pages with math;
  the widget scripts through ``nb_ipywidgets_js`` on pages with widgets);
* any other file that ``nb_ipywidgets_js`` already loads per page (``jupyter-widgets-offline.js``).

It also works around a Sphinx 7.4 bug: an inline ``<script>`` that an extension registers after
the builder starts (sphinx-thebe's ``const THEBE_JS_URL = ...``, sphinx-togglebutton's selector)
is written twice into every page, and the second ``const`` declaration throws a SyntaxError in
the browser. Identical inline scripts are de-duplicated per page.

Finally, it stops the build early, with the command to run, if the vendored files are missing
(``jupyter-book build .`` run directly, without ``make book`` / ``make static``): the pages would
otherwise build "successfully" and then render without math or widgets.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError

VENDOR_PREFIX = "vendor/"


def _path_of(entry) -> str:
    # html_js_files entries are "path" or ("path", {attrs})
    return entry[0] if isinstance(entry, (tuple, list)) else entry


def _filter_static(app: Sphinx, config: Config) -> None:
    per_page = set(getattr(config, "nb_ipywidgets_js", None) or {})

    def keep(entry) -> bool:
        path = _path_of(entry)
        return not (path.startswith(VENDOR_PREFIX) or path in per_page)

    config.html_js_files = [e for e in config.html_js_files if keep(e)]
    config.html_css_files = [e for e in config.html_css_files if keep(e)]


def _require_vendored(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    complete = Path(app.srcdir, "_static", "vendor", ".complete")
    if not complete.is_file():
        raise ConfigError(
            f"{complete} is missing: the book's JavaScript (MathJax, RequireJS, ipywidgets HTML "
            "manager) has not been vendored. Run `make static`, or build with `make book`."
        )


def _dedupe_inline_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        attrs = getattr(js, "attributes", None) or {}
        key = (getattr(js, "filename", js) or "", getattr(js, "priority", 500),
               tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    scripts[:] = kept  # Sphinx restores its own list after each page


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _filter_static)
    app.connect("builder-inited", _require_vendored)
    app.connect("html-page-context", _dedupe_inline_scripts)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
