"""The ``imagegen`` command: train, sample from and check the models the book ships.

    imagegen train dcgan --epochs 20 --out runs/dcgan [--device cuda] [--resume]
    imagegen train mlpgan --epochs 50 --out runs/mlpgan
    torchrun --standalone --nproc_per_node 2 -m imagegen_lib.cli train dcgan --out runs/ddp   # DDP (core.distributed)
    imagegen sample runs/dcgan/generator.safetensors --n 64 --out grid.png
    imagegen eval checkpoints/dcgan_mnist.safetensors [--n 10000] [--json out.json] [--manifest]
    imagegen eval real --dataset mnist        # the real-data floor of every metric
    imagegen data check                      # sha256-verify MNIST, Fashion-MNIST and the SR sets
    imagegen data download [mnist|fashion-mnist|sr]   # fetch what is missing, verified (make data runs it)
    imagegen train cgan|vae|ddpm --out runs/X [--time-budget S]   # Q5's models (cli/gan.py, cli/generative.py)
    imagegen sample runs/ddpm/model.safetensors --sampler ddim --steps 50; ... cgan ... --label 3
    imagegen train sr --arch resnet --scale 3 --out runs/sr --minutes 6    # super-resolution (cli/sr.py)
    imagegen eval-sr runs/sr/model.safetensors --set Set5 Set14 [--self-ensemble]   # Y-PSNR / SSIM
    imagegen toy-sweep --set paper --seeds 5 --steps 6000 --device cuda --out runs/toy_sweep.json   # Q4's fixes

One module per command registers it (:mod:`.registry`): ``train`` (its models are the rows of
``train.TRAINERS``), ``sample``, ``ship``, ``eval``, ``eval_sr``, ``data``, ``toy``; :mod:`.main` builds the
parser from them. Bad input (unknown model, bad flag value, unwritable --out, missing data, broken
checkpoint) ends with one line ``imagegen: error: ...`` and exit status 2; ``IMAGEGEN_DEBUG=1``
shows the traceback.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
