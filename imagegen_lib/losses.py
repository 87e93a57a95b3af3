"""GAN losses on discriminator *logits* ``l = D(x)`` (so ``D(x) = sigmoid(l)``).

``log D = -softplus(-l)`` and ``log(1 - D) = -softplus(l)`` are the numerically stable forms:
they never take the log of a sigmoid that underflowed to 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["d_loss_bce", "g_loss_nonsaturating", "g_loss_saturating", "G_LOSSES"]


def d_loss_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator: maximise log D(x) + log(1 - D(G(z)))  ==  minimise this."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator, the variant everyone uses: maximise log D(G(z)).

    Its gradient is large exactly when D confidently rejects the fakes (early in training).
    """
    return F.softplus(-fake_logits).mean()


def g_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator, the minimax original: minimise log(1 - D(G(z))).

    Its gradient vanishes when D(G(z)) -> 0, i.e. when G most needs it (see Q2).
    """
    return -F.softplus(fake_logits).mean()


G_LOSSES = {"nonsaturating": g_loss_nonsaturating, "saturating": g_loss_saturating}
