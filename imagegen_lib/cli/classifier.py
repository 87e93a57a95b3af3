"""``imagegen train classifier``: the CNN whose features FID/KID/precision/recall use
(``imagegen eval`` reads ``checkpoints/classifier_mnist`` and ``classifier_fashion``).

    imagegen train classifier --dataset fashion-mnist --epochs 15 --out runs/classifier_fashion
"""

from __future__ import annotations

import argparse
import sys

from ..core.data_files import DATASETS
from ..core.runtime import device_name, resolve_device, run_metadata
from .common import add_train_args

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_train_args(p)
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    p.set_defaults(epochs=12)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ..metrics.classifier import ClassifierConfig, train_classifier

    config = ClassifierConfig(dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr or ClassifierConfig.lr, seed=args.seed,
                              limit=args.limit)
    device = resolve_device(args.device)
    meta = run_metadata(argv, device, args.seed)
    print(f"training classifier on {args.dataset} ({device_name(device)}) -> {args.out}", file=sys.stderr)
    _, history = train_classifier(config, out_dir=args.out, resume=args.resume, device=device,
                                  progress=not args.no_progress, extra_meta=meta)
    last = history[-1]
    print(f"done: {last['epoch']} epochs in {last['seconds']:.1f} s; test accuracy {last['test_accuracy']:.4f}; "
          f"classifier: {args.out / 'classifier.safetensors'}")
    return 0
