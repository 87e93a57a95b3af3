"""Spot-the-bug drills: GAN training steps with one classic mistake each, kept runnable.

Each ``step_*`` function has the signature of :func:`step_correct` — one discriminator update,
then one generator update, with the BCE loss and the non-saturating generator loss — and
differs from it in a line or two, marked ``# BUG``. :func:`run_drill` trains a small 2-D GAN on
the 8-Gaussians ring with any of them and reports what a careful engineer would look at.
Used by Q2 and by the interview-drills page.
"""

from __future__ import annotations

import torch

from ..gan.losses import d_loss_bce, g_loss_nonsaturating
from ..gan.step import gan_train_step
from ..toy.gan import mode_coverage, ring_centres, ring_of_gaussians
from ..toy.models import ToyDiscriminator, ToyGenerator

__all__ = ["step_correct", "step_missing_detach", "step_missing_detach_retain_graph",
           "step_swapped_labels", "step_zero_grad_after_backward", "run_drill", "DRILLS"]


def step_correct(G, D, opt_g, opt_d, real, z):
    """The library's own step (:func:`imagegen_lib.gan.step.gan_train_step`), in the drills' signature."""
    stats = gan_train_step(G, D, opt_g, opt_d, real, z, g_loss_nonsaturating)
    return float(stats["loss_d"]), float(stats["loss_g"])


def step_missing_detach(G, D, opt_g, opt_d, real, z):
    fake = G(z)
    loss_d = d_loss_bce(D(real), D(fake))  # BUG: no .detach()
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = g_loss_nonsaturating(D(fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return float(loss_d.detach()), float(loss_g.detach())


def step_missing_detach_retain_graph(G, D, opt_g, opt_d, real, z):
    fake = G(z)
    loss_d = d_loss_bce(D(real), D(fake))  # BUG: no .detach() ...
    opt_d.zero_grad()
    loss_d.backward(retain_graph=True)  # ... "fixed" by keeping G's graph alive
    opt_d.step()
    loss_g = g_loss_nonsaturating(D(fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return float(loss_d.detach()), float(loss_g.detach())


def step_swapped_labels(G, D, opt_g, opt_d, real, z):
    fake = G(z)
    loss_d = d_loss_bce(D(fake.detach()), D(real))  # BUG: fakes passed as "real", reals as "fake"
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = g_loss_nonsaturating(D(fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return float(loss_d.detach()), float(loss_g.detach())


def step_zero_grad_after_backward(G, D, opt_g, opt_d, real, z):
    fake = G(z)
    loss_d = d_loss_bce(D(real), D(fake.detach()))
    loss_d.backward()
    opt_d.zero_grad()  # BUG: between backward() and step()
    opt_d.step()
    loss_g = g_loss_nonsaturating(D(fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return float(loss_d.detach()), float(loss_g.detach())


DRILLS = {
    "missing detach": step_missing_detach,
    "missing detach + retain_graph": step_missing_detach_retain_graph,
    "swapped real/fake labels": step_swapped_labels,
    "zero_grad between backward and step": step_zero_grad_after_backward,
}


def run_drill(step_fn, steps: int = 1000, seed: int = 0, batch_size: int = 128, hidden: int = 64,
              lr: float = 1e-3, log_every: int = 50) -> dict:
    """Train a ring GAN with ``step_fn``; report the measurable symptoms.

    Returns ``error`` (first line of an exception, or None), ``trace`` (rows of step, loss_d,
    loss_g, D(x), D(G(z)) averaged over ``log_every`` steps), ``coverage`` (:func:`mode_coverage`
    of 2,500 samples), ``d_weight_change`` (L2 distance D's weights travelled) and ``samples``.
    """
    torch.manual_seed(seed)
    G, D = ToyGenerator(hidden=hidden), ToyDiscriminator(hidden=hidden)
    d0 = torch.cat([p.detach().flatten().clone() for p in D.parameters()])
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(seed + 1)
    trace, error, acc = [], None, torch.zeros(4)
    for step in range(1, steps + 1):
        real = ring_of_gaussians(batch_size, generator=gen)
        z = torch.randn(batch_size, G.z_dim, generator=gen)
        try:
            loss_d, loss_g = step_fn(G, D, opt_g, opt_d, real, z)
        except RuntimeError as e:
            error = str(e).splitlines()[0]
            break
        with torch.no_grad():
            acc += torch.tensor([loss_d, loss_g, torch.sigmoid(D(real)).mean(), torch.sigmoid(D(G(z))).mean()])
        if step % log_every == 0:
            trace.append((step, *(acc / log_every).tolist()))
            acc.zero_()
    d1 = torch.cat([p.detach().flatten() for p in D.parameters()])
    with torch.no_grad():
        samples = G(torch.randn(2500, G.z_dim, generator=torch.Generator().manual_seed(12345)))
    return {"error": error, "trace": trace, "samples": samples,
            "coverage": mode_coverage(samples, ring_centres(), 0.02),
            "d_weight_change": float((d1 - d0).norm())}
