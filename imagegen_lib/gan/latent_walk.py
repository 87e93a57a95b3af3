"""Walking the latent space: spherical interpolation between noise vectors."""

from __future__ import annotations

import torch

__all__ = ["slerp", "latent_walk"]


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation, ``t`` in [0, 1]; shapes ``(D,), (D,), (T,) -> (T, D)``.

    Why not a straight line: in 100 dimensions a Gaussian sample has norm ≈ 10 (=√100), and the
    midpoint of two of them has norm ≈ 7 — a point G never saw during training. Following the
    great circle keeps every intermediate vector at a typical norm (White 2016, "Sampling
    Generative Networks").
    """
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


@torch.no_grad()
def latent_walk(G: torch.nn.Module, rows: int = 4, steps: int = 10, seed: int = 0) -> torch.Tensor:
    """``rows`` interpolations of ``steps`` images each between random endpoints: ``(rows*steps, 1, 28, 28)``."""
    gen = torch.Generator().manual_seed(seed)
    ends = torch.randn(rows, 2, G.z_dim, generator=gen)
    t = torch.linspace(0, 1, steps)
    z = torch.cat([slerp(a, b, t) for a, b in ends])
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    images = G(z.to(device)).float().cpu()
    G.train(was_training)
    return images
