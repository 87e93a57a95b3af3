"""Sphinx extension: ``{drill-snippet}``, a ``literalinclude`` that hides the bug markers.

The spot-the-bug code lives in the library (``imagegen_lib/practice/drills.py``,
``imagegen_lib/practice/reference_answers.py``), where each bug is marked with a trailing comment
(``# BUG: ...``, ``# <- the bug``, ``# ... "fixed" by ...``) so that the chapters can point at
it. An interview drill must not give the answer away, so the drills page includes the same source
(one source of truth, never a pasted copy) through this directive, which takes every option of
``literalinclude`` (``:pyobject:`` in particular) and drops those trailing comments. Nothing
else in the snippet changes.

    ```{drill-snippet} ../imagegen_lib/practice/drills.py
    :pyobject: step_missing_detach
    ```
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.directives.code import LiteralInclude

# A trailing comment that names or hints at the bug. Whole-line comments and ordinary trailing
# comments (shape notes, "why" notes) are kept.
BUG_MARKER = re.compile(r"[ \t]+#[ \t]*(?:BUG\b|<-|\.\.\.).*$", re.M)


def strip_bug_markers(text: str) -> str:
    return BUG_MARKER.sub("", text)


class DrillSnippet(LiteralInclude):
    def run(self):
        result = super().run()
        for node in result:
            blocks = [node] if isinstance(node, nodes.literal_block) else list(
                node.findall(nodes.literal_block)) if isinstance(node, nodes.Element) else []
            for block in blocks:
                text = strip_bug_markers(block.astext())
                if text == block.astext():
                    continue
                block.rawsource = text
                block[:] = [nodes.Text(text)]
        return result


def setup(app):
    app.add_directive("drill-snippet", DrillSnippet)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
