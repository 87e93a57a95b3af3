"""One GAN update — a discriminator step, then a generator step — the heart of every GAN loop here.

:func:`imagegen_lib.gan.train.train_gan` runs it (or, on a GPU, the same update captured as a CUDA graph
by :mod:`imagegen_lib.gan.fast_step`, which checks itself against it); the Q2 chapter dissects it and the
interview drills break it on purpose.
"""

from __future__ import annotations

import contextlib

import torch

from .losses import d_loss_bce, r1_from_scores

__all__ = ["gan_train_step"]


def gan_train_step(G, D, opt_g, opt_d, real, z, g_loss_fn, autocast=contextlib.nullcontext, labels=None,
                   r1_gamma: float = 0.0):
    """One GAN update: a discriminator step, then a generator step. Returns detached statistics.

    ``labels`` (conditional GAN only): the real batch's classes; the fakes are drawn for the same ones.
    ``r1_gamma`` > 0 adds the R1 penalty ``r1_gamma/2 · E||∇_x D(x_real)||²`` to D's loss in this
    step (lazy regularisation passes γ·k every k-th step) and returns it as ``r1``; ``loss_d``
    stays the plain BCE loss, comparable between runs with and without R1.
    """
    cond = () if labels is None else (labels,)  # the extra argument G and D take when conditional
    if r1_gamma:  # R1 differentiates D(real) with respect to the real images themselves
        real = real.detach().requires_grad_(True)
    # --- Discriminator: push D(real) up and D(fake) down. ---------------------------------------
    with autocast():
        fake = G(z, *cond)
        real_logits = D(real, *cond)
        # detach(): D's loss must not send gradients into G (G is not being trained here, and
        # without it G would be updated to make D's job *easier*).
        fake_logits = D(fake.detach(), *cond)
        loss_d = d_loss_bce(real_logits, fake_logits)
    r1 = r1_from_scores(real_logits, real, r1_gamma) if r1_gamma else None
    opt_d.zero_grad(set_to_none=True)
    (loss_d if r1 is None else loss_d + r1).backward()
    opt_d.step()

    # --- Generator: make the *updated* D call the same fakes real. ------------------------------
    with autocast():
        loss_g = g_loss_fn(D(fake, *cond))  # gradients flow through D into G; only opt_g steps
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()  # D's parameters also got gradients here; opt_d.zero_grad clears them next step

    stats = {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "d_real": torch.sigmoid(real_logits.detach().float()).mean(),  # D(x): 1 = "real"
        "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),  # D(G(z)) before D's update
    }
    if r1 is not None:
        stats["r1"] = r1.detach()
    return stats
