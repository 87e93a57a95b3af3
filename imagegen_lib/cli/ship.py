"""``imagegen ship``: copy a trained checkpoint into ``checkpoints/`` under a name, and add its entry
(size, sha256, the command that trained it) to ``checkpoints/MANIFEST.json``.

    imagegen ship runs/dcgan/generator.safetensors --name dcgan_mnist
    imagegen ship runs/ddpm_v/model.safetensors --name ddpm_v_mnist --half    # weights stored as float16
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .registry import command

__all__ = ["add_arguments", "run"]


@command("ship", help="copy a trained checkpoint into checkpoints/ and the MANIFEST")
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="e.g. runs/dcgan/generator.safetensors")
    p.add_argument("--name", required=True, help="name in checkpoints/, e.g. dcgan_mnist")
    p.add_argument("--half", action="store_true",
                   help="store the weights as float16 (half the size; evaluate both copies: the metrics must not move)")
    p.add_argument("--study", default=None, metavar="NAME",
                   help="this model is one variant of a comparison (e.g. q6): keep it out of the default "
                        "comparison table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ..core.manifest import ship

    entry = ship(args.checkpoint, args.name, half=args.half, study=args.study)
    print(f"shipped {args.name}: {entry['bytes'] / 2**20:.2f} MiB, sha256 {entry['sha256'][:12]}…, "
          f"trained by `{entry.get('command', '?')}`")
    return 0
