"""``imagegen train MODEL``: train one of the book's models into a run folder of checkpoints that
``--resume`` continues (``imagegen train MODEL --help`` lists each model's flags).

The models are the rows of :data:`TRAINERS`: adding a model to ``imagegen train`` is adding a row
(name, help line, the function that adds its flags, the function that runs it), with both functions
in the topic's own module (:mod:`.gan`, :mod:`.classifier`, :mod:`.sr`, :mod:`.generative`).
"""

from __future__ import annotations

import argparse
from typing import Callable

from . import classifier, gan, generative, sr
from .registry import Command, Run, add_parsers, command, table

__all__ = ["TRAINERS", "trainer", "add_arguments"]


def trainer(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None], run: Run,
            description: str | None = None) -> Command:
    """One row. A model's own ``--help`` opens with what it is: its help line unless a longer text is given."""
    return Command(name, help, add_arguments, description or help, run)


# The order of the rows is the order of `imagegen train --help`.
TRAINERS = table([
    trainer("dcgan", "DCGAN for 28x28 images (Radford et al. 2016)", gan.add_arguments, gan.run),
    trainer("mlpgan", "fully connected GAN: Exercise A's flawed first answer, fixed",
            gan.add_mlp_arguments, gan.run),
    trainer("classifier", "the CNN whose features the metrics use", classifier.add_arguments, classifier.run,
            description="the CNN whose features FID/KID/precision/recall use"),
    trainer("sr", "a super-resolution CNN on T91 patches (SRCNN, ESPCN, residual net)", sr.add_arguments, sr.run,
            description="Train a super-resolution CNN on random T91 patches (flips/rotations, L1 "
                        "or MSE, Adam, warm-up + cosine LR, EMA of the weights). Say how long "
                        "with --steps and/or --minutes (whichever ends first ends the schedule)."),
    trainer("cgan", "class-conditional DCGAN: label embedding into G, projection discriminator",
            gan.add_arguments, gan.run),
    trainer("vae", "convolutional VAE (Bernoulli likelihood, β option)",
            generative.add_vae_arguments, generative.run_vae,
            description="convolutional VAE: ELBO with a Bernoulli likelihood on [0, 1] pixels"),
    trainer("ddpm", "denoising diffusion (DDPM) with a small U-Net",
            generative.add_ddpm_arguments, generative.run_ddpm,
            description="DDPM: a U-Net predicting ε, x₀ or v; linear or cosine schedule (optionally with a "
                        "zero terminal SNR); Min-SNR weighting; class-conditional with --cond-drop; EMA weights"),
    trainer("flow", "flow matching (rectified flow) with the DDPM's U-Net",
            generative.add_flow_arguments, generative.run_flow,
            description="flow matching: the U-Net learns the velocity of straight paths from data to noise; "
                        "class-conditional with --cond-drop; EMA weights"),
], "imagegen train model")


@command("train", help="train a model (writes checkpoints you can --resume)")
def add_arguments(p: argparse.ArgumentParser) -> None:
    models = p.add_subparsers(dest="model", required=True, metavar="MODEL")
    add_parsers(models, TRAINERS.values())
