"""Sphinx extension: load MathJax on pages whose only math sits in raw HTML outputs.

Sphinx adds MathJax to a page only if its doctree has math nodes. A notebook output in
``text/html`` that carries Sphinx's own math markup (``imagegen_lib.practice.quiz`` writes
``<span class="math notranslate nohighlight">\\(...\\)</span>``) is a raw node, so a page whose
only math is in such an output would show raw TeX. Mark those pages as having equations.
"""

from docutils import nodes

MATH_MARKUP = 'class="math notranslate nohighlight"'


def _mark_raw_math(app, doctree) -> None:
    if any(MATH_MARKUP in node.astext() for node in doctree.findall(nodes.raw)
           if "html" in node.get("format", "").split()):
        app.env.get_domain("math").data["has_equations"][app.env.docname] = True


def setup(app):
    app.connect("doctree-read", _mark_raw_math)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
