"""sha256 of every super-resolution image, read from the text files in ``data_hashes/`` (package data).

- ``sr_files.sha256`` (``sha256sum`` format, made from the data folder's ``SHA256SUMS``): the hash
  of each file, ``FILE_SHA256``. ``sha256sum -c`` checks a data folder with it.
- ``t91_pixels.sha256``: T91 was converted losslessly from the source's BMP files to PNG, and a PNG
  encoder's bytes depend on its version; so a T91 image is also accepted when its *decoded pixels*
  hash to these values (sha256 of ``b"RGB WxH\\n" + raw bytes``), e.g. after ``imagegen data download sr``.
- ``bsd100_source_names.txt``: file name in the source repository (``img_NNN.png``) -> name here.

Each mapping keeps the order of its file (the order the data sets list their images in).
"""

from __future__ import annotations

from importlib.resources import files

__all__ = ["FILE_SHA256", "T91_PIXEL_SHA256", "BSD100_SOURCE_NAMES"]


def _pairs(name: str) -> list[tuple[str, str]]:
    text = files(__package__).joinpath("data_hashes", name).read_text(encoding="utf-8")
    return [tuple(line.split(maxsplit=1)) for line in text.splitlines() if line.strip()]


FILE_SHA256: dict[str, str] = {path: digest for digest, path in _pairs("sr_files.sha256")}
T91_PIXEL_SHA256: dict[str, str] = {name: digest for digest, name in _pairs("t91_pixels.sha256")}
BSD100_SOURCE_NAMES: dict[str, str] = dict(_pairs("bsd100_source_names.txt"))
