"""Where the library finds the book's own files: ``checkpoints/`` (with ``MANIFEST.json``) and
``book/quizzes/``.

In a clone (the editable install) they sit in the repository the package is imported from. A
notebook run elsewhere (Colab, Binder, a downloaded ``.ipynb``) has the library from a pip install
and none of those files; its first cell fetches them with
:func:`imagegen_lib.book.files.prepare_chapter` into the folder :func:`book_root` names, so that
``shipped("dcgan_mnist")`` and ``load_quiz(...)`` read the same way in both places.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PACKAGE_REPO", "book_root", "user_cache", "in_clone"]

# The folder above the package (this file is imagegen_lib/core/paths.py): the repository itself for an
# editable install, site-packages otherwise. Every repository path in the library is computed from this one.
PACKAGE_REPO = Path(__file__).resolve().parents[2]


def user_cache() -> Path:
    """The per-user cache folder: ``$IMAGEGEN_CACHE``, else ``~/.cache/imagegen`` ."""
    return Path(os.environ.get("IMAGEGEN_CACHE", Path.home() / ".cache" / "imagegen"))


def in_clone() -> bool:
    """Is the package imported from a clone of the book (which ships its checkpoints beside it)?"""
    return (PACKAGE_REPO / "checkpoints" / "MANIFEST.json").is_file()


def book_root() -> Path:
    """The folder that holds ``checkpoints/`` and ``book/quizzes/``.

    The clone the package is imported from; else ``$IMAGEGEN_BOOK_FILES``; else
    ``<user cache>/book-files``, where ``prepare_chapter`` puts them. The folder need not exist
    yet: outside a clone it is filled on demand.
    """
    if in_clone():
        return PACKAGE_REPO
    if os.environ.get("IMAGEGEN_BOOK_FILES"):
        return Path(os.environ["IMAGEGEN_BOOK_FILES"]).expanduser()
    return user_cache() / "book-files"
