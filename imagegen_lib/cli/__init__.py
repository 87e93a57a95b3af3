"""The ``imagegen`` command: train, sample from and check the models the book ships.

    imagegen train dcgan --epochs 20 --out runs/dcgan [--device cuda] [--resume]
    imagegen train mlpgan --epochs 50 --out runs/mlpgan
    torchrun --standalone --nproc_per_node 2 -m imagegen_lib.cli train dcgan --out runs/ddp   # DDP (distributed.py)
    imagegen sample runs/dcgan/generator.safetensors --n 64 --out grid.png
    imagegen eval checkpoints/dcgan_mnist.safetensors [--n 10000] [--json out.json] [--manifest]
    imagegen eval real --dataset mnist        # the real-data floor of every metric
    imagegen data check                      # sha256-verify MNIST, Fashion-MNIST and the SR sets
    imagegen data download [mnist|fashion-mnist|sr]   # fetch what is missing, verified (make data runs it)
    imagegen train cgan|vae|ddpm --out runs/X [--time-budget S]   # Q5's models (cli_generative)
    imagegen sample runs/ddpm/model.safetensors --sampler ddim --steps 50; ... cgan ... --label 3
    imagegen train sr --arch resnet --scale 3 --out runs/sr --minutes 6    # super-resolution (cli_sr)
    imagegen eval-sr runs/sr/model.safetensors --set Set5 Set14 [--self-ensemble]   # Y-PSNR / SSIM

Bad input (unknown model, bad flag value, unwritable --out, missing data, broken checkpoint) ends
with one line ``imagegen: error: ...`` and exit status 2; ``IMAGEGEN_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from .. import __version__
from ..core.data_files import DATASETS
from ..core.runtime import device_name, resolve_device, run_metadata
from .arg_types import positive_float as _positive_float
from .arg_types import positive_int as _positive_int

EXIT_USAGE = 2


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------

def _add_common_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, samples)")
    p.add_argument("--epochs", type=_positive_int, default=20)
    p.add_argument("--batch-size", type=_positive_int, default=128)
    p.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: 2e-4 for GANs, 2e-3 peak for the classifier)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--limit", type=_positive_int, default=None, help="use only the first N training images")
    p.add_argument("--max-steps", type=_positive_int, default=None,
                   help="stop after this many steps (resume later to finish)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")


def _add_gan_parser(sub, arch: str, help_text: str) -> None:
    p = sub.add_parser(arch, help=help_text, description=help_text)
    _add_common_train_args(p)
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    p.add_argument("--z-dim", type=_positive_int, default=100)
    if arch in ("dcgan", "cgan"):
        p.add_argument("--width", type=_positive_int, default=64, help="channel width (64: 1.9M-param G)")
    p.add_argument("--g-loss", choices=["nonsaturating", "saturating"], default="nonsaturating")
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--log-every", type=_positive_int, default=50)
    p.add_argument("--sample-every", type=_positive_int, default=500)
    p.add_argument("--ckpt-every", type=_positive_int, default=1000)
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--bf16", action="store_true", default=None,
                           help="bf16 autocast (CUDA only; the default with the fast GPU step, not with --eager)")
    precision.add_argument("--fp32", dest="bf16", action="store_false",
                           help="float32 throughout, also with the fast GPU step")
    p.add_argument("--eager", action="store_true",
                   help="on a GPU, the plain float32 PyTorch loop instead of the CUDA-graph step (debugging: "
                        "the same updates as the fast step with --fp32, up to rounding)")
    p.set_defaults(func=_cmd_train_gan, arch=arch)


def _cmd_train_gan(args, argv) -> int:
    from ..core import distributed
    from ..gan.train import GANConfig, train_gan

    config = GANConfig(arch=args.arch, dataset=args.dataset, z_dim=args.z_dim,
                       width=getattr(args, "width", 64), epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr or GANConfig.lr, beta1=args.beta1, g_loss=args.g_loss, seed=args.seed, limit=args.limit,
                       log_every=args.log_every, sample_every=args.sample_every,
                       ckpt_every=args.ckpt_every, bf16=args.bf16)
    dist_info = distributed.init_from_env(args.device)  # under torchrun: join its process group; else None
    device = dist_info.device if dist_info else resolve_device(args.device)
    meta = run_metadata(argv, device, args.seed)
    say = print if distributed.is_main() else (lambda *a, **k: None)  # rank 0 speaks for all
    say(f"training {args.arch} on {args.dataset} ({device_name(device)}"
        f"{f' x {dist_info.world_size} processes' if dist_info else ''}) -> {args.out}", file=sys.stderr)
    try:
        result = train_gan(config, out_dir=args.out, resume=args.resume, device=device,
                           progress=not args.no_progress, max_steps=args.max_steps, extra_meta=meta,
                           fast=False if args.eager else None)
    finally:
        distributed.shutdown()
    last = result.history[-1] if result.history else {}
    say(f"done: {result.steps} steps in {result.seconds:.1f} s; "
          f"D loss {last.get('loss_d', float('nan')):.3f}, G loss {last.get('loss_g', float('nan')):.3f}; "
          f"generator: {args.out / 'generator.safetensors'}")
    return 0


def _cmd_train_classifier(args, argv) -> int:
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


# ---------------------------------------------------------------------------------------------
# sample, data
# ---------------------------------------------------------------------------------------------

# `imagegen sample` (every generator kind): cli_generative.cmd_sample


def _cmd_ship(args, argv) -> int:
    from ..core.manifest import ship

    entry = ship(args.checkpoint, args.name)
    print(f"shipped {args.name}: {entry['bytes'] / 2**20:.2f} MiB, sha256 {entry['sha256'][:12]}…, "
          f"trained by `{entry.get('command', '?')}`")
    return 0


def _cmd_eval(args, argv) -> int:
    import json

    from ..metrics.evaluate import evaluate_generator, evaluate_real, format_report

    device = resolve_device(args.device)
    print(f"evaluating {args.checkpoint} on {device_name(device)} (about 30 s on 2 CPU cores)", file=sys.stderr)
    if str(args.checkpoint) == "real":
        result = evaluate_real(args.dataset, n=args.n, seed=args.seed, classifier_stem=args.classifier,
                               device=device)
    else:
        from .generative import sampler_options
        result = evaluate_generator(args.checkpoint, n=args.n, seed=args.seed, classifier_stem=args.classifier,
                                    device=device, **sampler_options(args))
    print(format_report(result))
    if args.manifest:
        _record_in_manifest(args.checkpoint, result, argv)
    if args.json is not None:
        result["run"] = run_metadata(argv, device, args.seed)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


METRIC_KEYS = ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall", "coverage",
               "class_kl", "class_histogram", "memorisation_ratio", "memorisation_copies")


def _record_in_manifest(checkpoint: Path, result: dict, argv: list[str]) -> None:
    """Write an eval's metrics into checkpoints/MANIFEST.json: the generator's entry, or the data floor."""
    from ..core.manifest import CHECKPOINT_DIR, record_floor, shipped_stem, update_metrics

    metrics = {k: result[k] for k in METRIC_KEYS}
    metrics.update(eval_n=result["n"], eval_seed=result["seed"], eval_command="imagegen " + shlex.join(argv))
    if str(checkpoint) == "real":
        record_floor(result["dataset"], metrics)
        print(f"recorded the {result['dataset']} floor in {CHECKPOINT_DIR / 'MANIFEST.json'}", file=sys.stderr)
        return
    stem = shipped_stem(checkpoint, CHECKPOINT_DIR)
    from .generative import manifest_metrics
    update_metrics(stem.name, manifest_metrics(result, metrics))
    print(f"recorded the metrics of {stem.name} in {CHECKPOINT_DIR / 'MANIFEST.json'}", file=sys.stderr)


def _cmd_data(args, argv) -> int:
    if args.action == "download":  # data_files imports no torch: `make data` runs this at every build
        from ..core.data_files import ensure

        for got in ensure([args.name] if args.name else None):
            state = "downloaded and verified" if got.downloaded else "present"
            print(f"{got.name}: {state} in {got.folder}")
        return 0
    from ..core import data

    names = [args.name] if args.name else [*sorted(DATASETS), "sr"]
    for name in names:
        if name == "sr":  # Set5, Set14, BSD100, T91 (imagegen_lib.sr.data)
            from ..sr import data as sr_data
            for set_name, folder in sr_data.verify_sr_sets().items():
                print(f"{set_name}: OK ({len(list(folder.glob('*.png')))} images, sha256 verified) in {folder}")
        else:
            raw = data.verify(name)
            print(f"{name}: OK (4 files, sha256 verified) in {raw}")
    return 0


# ---------------------------------------------------------------------------------------------

def _new_parser():
    parser = argparse.ArgumentParser(prog="imagegen", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"imagegen {__version__}")
    return parser, parser.add_subparsers(dest="command", required=True, metavar="COMMAND")


def _add_data_parser(sub) -> None:
    data = sub.add_parser("data", help="verify or download the data sets",
                          description="check: sha256-verify every file of the data sets where they are found. "
                                      "download: fetch the sets that are missing (all, or the one named) into "
                                      "$IMAGEGEN_DATA if set, else ~/.cache/imagegen/data, each file verified; "
                                      "$IMAGEGEN_DATA_URL names a mirror to fetch from.")
    data.add_argument("action", choices=["check", "download"])
    data.add_argument("name", nargs="?", choices=[*sorted(DATASETS), "sr"])
    data.set_defaults(func=_cmd_data)


def _data_parser() -> argparse.ArgumentParser:
    """The parser with the ``data`` sub-command only: the others import torch for their defaults
    (~2 s on 2 cores), and ``make data`` runs ``imagegen data download`` before every build."""
    parser, sub = _new_parser()
    _add_data_parser(sub)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser, sub = _new_parser()

    train = sub.add_parser("train", help="train a model (writes checkpoints you can --resume)")
    models = train.add_subparsers(dest="model", required=True, metavar="MODEL")
    _add_gan_parser(models, "dcgan", "DCGAN for 28x28 images (Radford et al. 2016)")
    _add_gan_parser(models, "mlpgan", "fully connected GAN: the interview's reference answer, fixed")
    clf = models.add_parser("classifier", help="the CNN whose features the metrics use",
                            description="the CNN whose features FID/KID/precision/recall use")
    _add_common_train_args(clf)
    clf.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    clf.set_defaults(func=_cmd_train_classifier, epochs=12)
    from .sr import add_eval_sr_parser, add_train_sr_parser
    add_train_sr_parser(models)
    _add_gan_parser(models, "cgan", "class-conditional DCGAN: label embedding into G, projection discriminator")
    from .generative import add_sampler_args, add_train_parsers, cmd_sample
    add_train_parsers(models, _add_common_train_args, _positive_int, _positive_float)

    sample = sub.add_parser("sample", help="draw a grid of samples from a generator checkpoint")
    sample.add_argument("checkpoint", type=Path, help="NAME.safetensors (with NAME.json beside it)")
    sample.add_argument("--n", type=_positive_int, default=64)
    sample.add_argument("--nrow", type=_positive_int, default=8)
    sample.add_argument("--out", type=Path, default=Path("samples.png"))
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", default="auto")
    add_sampler_args(sample, _positive_int, label=True)
    sample.set_defaults(func=cmd_sample)

    ship = sub.add_parser("ship", help="copy a trained checkpoint into checkpoints/ and the MANIFEST")
    ship.add_argument("checkpoint", type=Path, help="e.g. runs/dcgan/generator.safetensors")
    ship.add_argument("--name", required=True, help="name in checkpoints/, e.g. dcgan_mnist")
    ship.set_defaults(func=_cmd_ship)

    ev = sub.add_parser("eval", help="FID, KID, IS, precision/recall, coverage of a generator (or 'real')",
                        description="score a generator checkpoint against the test split; "
                                    "'imagegen eval real' scores training images instead (the floor)")
    ev.add_argument("checkpoint", type=Path, help="NAME.safetensors of a generator, or the word 'real'")
    ev.add_argument("--n", type=_positive_int, default=10_000, help="samples to score (FID needs n > 128)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--dataset", choices=sorted(DATASETS), default="mnist",
                    help="for 'real' only (a generator's data set is read from its checkpoint)")
    ev.add_argument("--classifier", type=Path, default=None,
                    help="feature extractor stem (default: checkpoints/classifier_<dataset>)")
    ev.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    ev.add_argument("--device", default="auto")
    add_sampler_args(ev, _positive_int)
    ev.add_argument("--manifest", action="store_true",
                    help="record the metrics in checkpoints/MANIFEST.json (shipped checkpoints and 'real')")
    ev.set_defaults(func=_cmd_eval)

    add_eval_sr_parser(sub)

    _add_data_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = (_data_parser() if argv[:1] == ["data"] else build_parser()).parse_args(argv)
    try:
        return args.func(args, argv)
    except KeyboardInterrupt:
        if args.command == "data":  # fetch_file deleted the file it was writing; the finished ones are verified
            print("\ninterrupted; no partial file was kept (run it again to fetch the rest)", file=sys.stderr)
        else:
            print("\ninterrupted; the last checkpoint was saved (use --resume to continue)", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as e:
        # Our own errors (DataError, CheckpointError, bad values, unwritable paths) carry messages
        # that say what to fix; a traceback would only bury them.
        if os.environ.get("IMAGEGEN_DEBUG"):
            raise
        print(f"imagegen: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
