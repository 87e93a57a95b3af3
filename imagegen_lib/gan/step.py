"""One GAN update — a discriminator step, then a generator step — the heart of every GAN loop here.

:func:`imagegen_lib.gan.train.train_gan` runs it (or, on a GPU, the same update captured as a CUDA graph
by :mod:`imagegen_lib.gan.fast_step`, which checks itself against it); the Q2 chapter dissects it and the
interview drills break it on purpose.
"""

from __future__ import annotations

import contextlib

import torch

from .losses import d_loss_bce, r1_from_scores

__all__ = ["gan_train_step", "r1_step"]


def gan_train_step(G, D, opt_g, opt_d, real, z, g_loss_fn, autocast=contextlib.nullcontext, labels=None):
    """One GAN update: a discriminator step, then a generator step. Returns detached statistics.

    ``labels`` (conditional GAN only): the real batch's classes; the fakes are drawn for the same ones.
    """
    cond = () if labels is None else (labels,)  # the extra argument G and D take when conditional
    # --- Discriminator: push D(real) up and D(fake) down. ---------------------------------------
    with autocast():
        fake = G(z, *cond)
        real_logits = D(real, *cond)
        # detach(): D's loss must not send gradients into G (G is not being trained here, and
        # without it G would be updated to make D's job *easier*).
        fake_logits = D(fake.detach(), *cond)
        loss_d = d_loss_bce(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    # --- Generator: make the *updated* D call the same fakes real. ------------------------------
    with autocast():
        loss_g = g_loss_fn(D(fake, *cond))  # gradients flow through D into G; only opt_g steps
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()  # D's parameters also got gradients here; opt_d.zero_grad clears them next step

    return {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "d_real": torch.sigmoid(real_logits.detach().float()).mean(),  # D(x): 1 = "real"
        "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),  # D(G(z)) before D's update
    }


def r1_step(D, opt_d, real, gamma, autocast=contextlib.nullcontext, labels=None):
    """One D update on the R1 penalty alone, ``gamma/2 · E||∇_x D(x_real)||²``; returns the penalty.

    This is lazy regularisation as StyleGAN2 runs it (its "Dreg" phase, appendix B): every k-th
    step, after the usual update, a separate D step on the penalty weighted ``k·γ``, so that its
    strength per step is the same as ``γ`` every step, at a k-th of the cost. (StyleGAN2 also scales
    D's Adam learning rate and betas by k/(k+1) for the extra steps; here D's optimiser is left as
    it is, so a run with R1 differs from one without in the penalty alone.)
    """
    cond = () if labels is None else (labels,)
    x = real.detach().requires_grad_(True)  # R1 differentiates D with respect to the images themselves
    with autocast():
        scores = D(x, *cond)
    penalty = r1_from_scores(scores, x, gamma)
    opt_d.zero_grad(set_to_none=True)
    # + 0·scores, as StyleGAN2-ADA's R1 phase does: weights that ∇_x D doesn't depend on (D's last
    # bias) get an exact zero gradient rather than none, which DistributedDataParallel requires
    (penalty + 0 * scores.float().sum()).backward()
    opt_d.step()
    return penalty.detach()
