"""``imagegen data check|download``: sha256-verify the data sets where they are found, or fetch the
missing ones (MNIST, Fashion-MNIST, and ``sr``: Set5, Set14, BSD100, T91), each file verified.

    imagegen data check                      # sha256-verify MNIST, Fashion-MNIST and the SR sets
    imagegen data download [mnist|fashion-mnist|sr]   # fetch what is missing, verified (make data runs it)

``make data`` runs ``download`` before every build, so with the data present it must not import
torch: :mod:`imagegen_lib.core.data_files` does not, and :mod:`.main` builds only this command's
arguments when it is the one named.
"""

from __future__ import annotations

import argparse

from ..core.data_files import DATASETS
from .registry import command

__all__ = ["add_arguments", "run"]


@command("data", help="verify or download the data sets",
         description="check: sha256-verify every file of the data sets where they are found. "
                     "download: fetch the sets that are missing (all, or the one named) into "
                     "$IMAGEGEN_DATA if set, else ~/.cache/imagegen/data, each file verified; "
                     "$IMAGEGEN_DATA_URL names a mirror to fetch from.")
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["check", "download"])
    p.add_argument("name", nargs="?", choices=[*sorted(DATASETS), "sr"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    if args.action == "download":
        from ..core.data_files import ensure

        for got in ensure([args.name] if args.name else None):
            state = "downloaded and verified" if got.downloaded else "present"
            print(f"{got.name}: {state} in {got.folder}")
        return 0
    from ..core import data as core_data  # loads images with torch; `check` may wait for it

    names = [args.name] if args.name else [*sorted(DATASETS), "sr"]
    for name in names:
        if name == "sr":  # Set5, Set14, BSD100, T91 (imagegen_lib.sr.data)
            from ..sr import data as sr_data
            for set_name, folder in sr_data.verify_sr_sets().items():
                print(f"{set_name}: OK ({len(list(folder.glob('*.png')))} images, sha256 verified) in {folder}")
        else:
            raw = core_data.verify(name)
            print(f"{name}: OK (4 files, sha256 verified) in {raw}")
    return 0
