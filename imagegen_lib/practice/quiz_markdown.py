"""How bank text becomes HTML that cannot carry markup or scripts: a small, safe Markdown subset.

Paragraphs, ```fenced code```, `inline code`, **bold**, *italic* and TeX math in ``$...$`` /
``$$...$$`` (``\\$`` is a dollar sign); everything else is HTML-escaped. Math is kept for MathJax
in one of two forms (``math_mode``): ``"sphinx"``, the book's own markup, for the static page;
``"dollar"``, ``$...$``, for the live widget's ``ipywidgets.HTMLMath``.
"""

from __future__ import annotations

import html
import re

__all__ = ["render_inline", "render_text"]

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
