"""A convolutional variational autoencoder (Kingma & Welling 2014) for 28×28 images.

Model: ``z ~ N(0, I)`` in ``latent_dim`` dimensions, pixels ``x_i | z ~ Bernoulli(sigmoid(f(z)_i))``
independently. The encoder outputs the mean and log-variance of a diagonal Gaussian
``q(z | x) = N(μ(x), diag σ²(x))``; training maximises the ELBO

    log p(x) ≥ E_q[log p(x | z)] − KL(q(z | x) || N(0, I))

estimated with one ``z = μ + σ·ε`` per image (the *reparameterisation trick*: the randomness sits
in ``ε ~ N(0, I)``, so gradients flow through ``μ`` and ``σ``). :func:`elbo_terms` returns both
terms per image in **nats**; ``β ≠ 1`` weights the KL (β-VAE, Higgins et al. 2017).

The likelihood, stated: Bernoulli on grey levels in [0, 1] (the usual "binary cross-entropy"
VAE). For grey targets this is not a normalised density — its minimum is the pixels' own entropy,
not 0, so the "NLL" is a cross-entropy, comparable between runs on the same data but not a true
log-likelihood (the *continuous Bernoulli* of Loaiza-Ganem & Cunningham 2019 fixes the
normalisation). Samples are the decoder's *mean* image ``sigmoid(f(z))``, not Bernoulli draws of it.

Images enter in ``[0, 1]``; :meth:`ConvVAE.sample` returns ``[-1, 1]`` like every generator of
the book, so the same metrics apply.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvVAE", "elbo_terms", "check_unit_images", "latent_traversal"]


class ConvVAE(nn.Module):
    def __init__(self, latent_dim: int = 16, width: int = 32, hidden: int = 256):
        super().__init__()
        self.latent_dim = latent_dim
        w = width
        self.encoder = nn.Sequential(
            # (N, 1, 28, 28) in [0, 1]
            nn.Conv2d(1, w, kernel_size=4, stride=2, padding=1), nn.SiLU(),
            # (N, w, 14, 14)
            nn.Conv2d(w, 2 * w, kernel_size=4, stride=2, padding=1), nn.SiLU(),
            # (N, 2w, 7, 7)
            nn.Flatten(),
            # (N, 2w·49)
            nn.Linear(2 * w * 49, hidden), nn.SiLU(),
            # (N, hidden)
            nn.Linear(hidden, 2 * latent_dim),
            # (N, 2·latent): μ and log σ², side by side
        )
        self.decoder = nn.Sequential(
            # (N, latent)
            nn.Linear(latent_dim, hidden), nn.SiLU(),
            # (N, hidden)
            nn.Linear(hidden, 2 * w * 49), nn.SiLU(),
            # (N, 2w·49)
            nn.Unflatten(1, (2 * w, 7, 7)),
            # (N, 2w, 7, 7)
            nn.ConvTranspose2d(2 * w, w, kernel_size=4, stride=2, padding=1), nn.SiLU(),
            # (N, w, 14, 14)
            nn.ConvTranspose2d(w, w, kernel_size=4, stride=2, padding=1), nn.SiLU(),
            # (N, w, 28, 28)
            nn.Conv2d(w, 1, kernel_size=3, padding=1),
            # (N, 1, 28, 28) logits of the Bernoulli means
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 1, 28, 28)`` in [0, 1] -> ``μ, log σ²``, each ``(N, latent)``."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``z = μ + σ·ε``: a sample of ``q(z | x)`` that is differentiable in ``μ`` and ``σ``."""
        return mu + torch.exp(0.5 * logvar) * noise

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, latent)`` -> ``(N, 1, 28, 28)`` Bernoulli *logits* (``sigmoid`` gives the mean image)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None):
        """Returns ``(recon_logits, μ, log σ²)``; ``noise`` is ε (drawn here if not given)."""
        mu, logvar = self.encode(x)
        if noise is None:
            noise = torch.randn_like(mu)
        return self.decode(self.reparameterize(mu, logvar, noise)), mu, logvar

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean reconstruction ``sigmoid(f(μ(x)))`` in [0, 1] (no sampling: the posterior mean)."""
        mu, _ = self.encode(x)
        return torch.sigmoid(self.decode(mu))


@torch.no_grad()
def latent_traversal(vae: ConvVAE, z: torch.Tensor | None = None, dims=None,
                     values: torch.Tensor | None = None) -> torch.Tensor:
    """Decode ``z`` with one latent coordinate swept at a time: what each dimension has learnt to draw.

    Returns ``(len(dims) · len(values), 1, 28, 28)`` mean images in [0, 1], one row per dimension
    (show with ``nrow=len(values)``). ``z`` defaults to the prior's mean (zeros), ``dims`` to all,
    ``values`` to nine points from −3 to 3 (the prior's ±3σ).
    """
    device = next(vae.parameters()).device
    z = torch.zeros(vae.latent_dim) if z is None else z.detach().flatten().float().cpu()
    dims = list(range(vae.latent_dim)) if dims is None else list(dims)
    values = torch.linspace(-3, 3, 9) if values is None else torch.as_tensor(values, dtype=torch.float32)
    codes = z.repeat(len(dims) * len(values), 1)  # (D·V, latent)
    for row, d in enumerate(dims):
        codes[row * len(values):(row + 1) * len(values), d] = values
    was_training = vae.training
    vae.eval()
    images = torch.sigmoid(vae.decode(codes.to(device)).float()).cpu()
    vae.train(was_training)
    return images


def check_unit_images(x: torch.Tensor) -> None:
    """The Bernoulli likelihood needs targets in [0, 1]; say so clearly when they are not."""
    if not torch.is_tensor(x) or x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"images must be a (N, 1, 28, 28) tensor, got {shape}")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        hint = (" — looks like [-1, 1] (tanh) data: use (x + 1) / 2, or load_images(value_range=(0, 1))"
                if lo >= -1.001 and hi <= 1.001 else "")
        raise ValueError(f"the VAE's Bernoulli likelihood needs pixel intensities in [0, 1], got "
                         f"[{lo:.3g}, {hi:.3g}]{hint}")


def elbo_terms(x: torch.Tensor, recon_logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
               beta: float = 1.0, check: bool = True) -> dict[str, torch.Tensor]:
    """The two ELBO terms, per image in nats, averaged over the batch.

    - ``recon``: ``−log p(x | z) = Σ_pixels BCE(sigmoid(logit), x)`` (Bernoulli, summed over the 784
      pixels, *not* averaged: a per-pixel mean would silently weight the KL 784× more);
    - ``kl``: ``KL(N(μ, σ²) || N(0, 1))`` in closed form, ``½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)``;
    - ``loss = recon + β·kl`` (what is minimised) and ``elbo = −(recon + kl)`` (a lower bound on
      ``log p(x)``, whatever β).
    """
    if check:
        check_unit_images(x)
    recon = F.binary_cross_entropy_with_logits(recon_logits.float(), x.float(), reduction="none")
    recon = recon.flatten(1).sum(dim=1)  # (N,)
    mu, logvar = mu.float(), logvar.float()
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)  # (N,)
    return {"recon": recon.mean(), "kl": kl.mean(), "loss": (recon + beta * kl).mean(),
            "elbo": -(recon + kl).mean()}
