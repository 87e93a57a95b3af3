"""Sphinx extension: bibliography labels "Goodfellow et al., 2014" instead of "[1]", "[2]", ...

The book cites author-year style (``bibtex_reference_style: author_year``), but pybtex's "plain"
style labels the bibliography entries with numbers, so a reader following "[Goodfellow et al.,
2014]" lands on "[6]". This registers the pybtex style ``plain_authoryear``: "plain" formatting
and sorting, with labels that match the in-text citations (a, b, ... appended to the year when
two entries would otherwise get the same label). Selected in _config.yml with
``bibtex_default_style: plain_authoryear``.
"""

from __future__ import annotations

import string
from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _authors(entry) -> str:
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    last = [" ".join(part.render_as("text") for part in p.rich_last_names) for p in persons]
    if not last:
        return entry.key
    if len(last) == 1:
        return last[0]
    if len(last) == 2:
        return f"{last[0]} and {last[1]}"
    return f"{last[0]} et al."


class AuthorYearLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [f"{_authors(e)}, {e.fields.get('year', 'n.d.')}" for e in entries]
        total, seen = Counter(labels), Counter()
        for label in labels:
            if total[label] > 1:
                yield label + string.ascii_lowercase[seen[label]]
                seen[label] += 1
            else:
                yield label


class PlainAuthorYearStyle(PlainStyle):
    default_label_style = "authoryear"


def setup(app):
    register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabelStyle)
    register_plugin("pybtex.style.formatting", "plain_authoryear", PlainAuthorYearStyle)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
