"""Models, one file per family: ``gan`` (MLP GAN, DCGAN), ``toy`` (2-D MLPs for the toy GANs),
``sr`` (SRCNN, ESPCN, a residual super-resolution net), ``cgan`` (class-conditional DCGAN), ``vae``
(convolutional VAE), ``ddpm`` (noise schedule, U-Net, DDPM and DDIM samplers)."""

from torch import nn


def count_parameters(module: nn.Module) -> int:
    """How many numbers the network learns (every parameter tensor's element count, summed)."""
    return sum(p.numel() for p in module.parameters())
