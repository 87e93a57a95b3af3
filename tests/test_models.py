"""GAN models (shapes, ranges, sizes, init) and GAN losses (values and gradients)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from imagegen_lib.gan.losses import G_LOSSES, d_loss_bce, g_loss_nonsaturating, g_loss_saturating
from imagegen_lib.gan.models import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator,
                                     build_gan, count_parameters)

LOG2 = math.log(2.0)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch, width, z_dim", [
    ("mlpgan", 64, 100), ("mlpgan", 64, 8),
    ("dcgan", 4, 100), ("dcgan", 8, 16), ("dcgan", 16, 32),
])
def test_shapes_and_ranges(arch, width, z_dim):
    torch.manual_seed(0)
    G, D = build_gan(arch, z_dim=z_dim, width=width)
    assert G.z_dim == z_dim
    with torch.no_grad():
        for n in (1, 5):  # batch of one: batch norm in eval mode must handle it
            G.eval(), D.eval()
            x = G(torch.randn(n, z_dim) * 10)  # large z saturates tanh: still inside [-1, 1]
            assert x.shape == (n, 1, 28, 28)
            assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
            logits = D(x)
            assert logits.shape == (n,)  # one raw logit per image, no trailing dim
        G.train(), D.train()
        x = G(torch.randn(4, z_dim))
        assert float(x.abs().max()) <= 1.0
        logits = D(x)
        assert logits.shape == (4,)
    # logits, not probabilities: nothing squashes them into (0, 1)
    assert not isinstance(list(D.modules())[-1], nn.Sigmoid)
    # the generator accepts z shaped (N, z_dim, 1, 1) too
    assert G(torch.randn(2, z_dim, 1, 1)).shape == (2, 1, 28, 28)


def test_discriminator_accepts_real_batch(mnist_tiny):
    x, _ = mnist_tiny
    for arch in ("mlpgan", "dcgan"):
        _, D = build_gan(arch, width=8)
        with torch.no_grad():
            out = D(x[:7])
        assert out.shape == (7,) and torch.isfinite(out).all()


@pytest.mark.parametrize("arch, g_params, d_params", [
    ("mlpgan", 1_486_352, 533_505),
    ("dcgan", 1_911_233, 431_937),
])
def test_default_parameter_counts(arch, g_params, d_params):
    G, D = build_gan(arch)
    assert count_parameters(G) == g_params
    assert count_parameters(D) == d_params


def test_width_scales_dcgan_and_is_ignored_by_mlp():
    g8, d8 = build_gan("dcgan", width=8)
    g16, d16 = build_gan("dcgan", width=16)
    assert count_parameters(g8) < count_parameters(g16) < 1_911_233
    assert count_parameters(d8) < count_parameters(d16) < 431_937
    assert count_parameters(build_gan("mlpgan", width=8)[0]) == 1_486_352
    assert isinstance(g8, DCGANGenerator) and isinstance(d8, DCGANDiscriminator)
    g, d = build_gan("mlpgan", z_dim=4)
    assert isinstance(g, MLPGenerator) and isinstance(d, MLPDiscriminator)


def test_dcgan_init_statistics():
    torch.manual_seed(0)
    G, D = build_gan("dcgan")
    convs = [m for net in (G, D) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 7
    linear = D.net[-1]
    assert abs(float(linear.weight.detach().std()) - 0.02) < 0.003 and torch.count_nonzero(linear.bias) == 0
    for m in convs:
        w = m.weight.detach()
        if w.numel() > 1000:  # enough samples for a tight estimate
            assert abs(float(w.std()) - 0.02) < 0.002
            assert abs(float(w.mean())) < 0.002
        if m.bias is not None:
            assert torch.count_nonzero(m.bias) == 0
    bns = [m for net in (G, D) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 5
    scales = torch.cat([m.weight.detach() for m in bns])
    assert abs(float(scales.mean()) - 1.0) < 0.005 and abs(float(scales.std()) - 0.02) < 0.005
    assert all(torch.count_nonzero(m.bias) == 0 for m in bns)


def test_build_is_reproducible_under_a_seed():
    torch.manual_seed(3)
    a, _ = build_gan("dcgan", width=8)
    torch.manual_seed(3)
    b, _ = build_gan("dcgan", width=8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_unknown_arch():
    with pytest.raises(ValueError, match="unknown GAN architecture 'vae'.*dcgan.*mlpgan"):
        build_gan("vae")


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------

def test_losses_at_logit_zero():
    """D(x) = sigmoid(0) = 1/2 everywhere: every term is log 2."""
    zero = torch.zeros(5)
    assert d_loss_bce(zero, zero).item() == pytest.approx(2 * LOG2)
    assert g_loss_nonsaturating(zero).item() == pytest.approx(LOG2)
    assert g_loss_saturating(zero).item() == pytest.approx(-LOG2)


def test_losses_at_known_logits():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sig = torch.sigmoid
    expected_d = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    assert d_loss_bce(real, fake).item() == pytest.approx(expected_d.item(), rel=1e-6)
    assert g_loss_nonsaturating(fake).item() == pytest.approx(-torch.log(sig(fake)).mean().item(), rel=1e-6)
    assert g_loss_saturating(fake).item() == pytest.approx(torch.log(1 - sig(fake)).mean().item(), rel=1e-6)
    # hand-computed: log(1 + e^-2) + log(1 + e^1) etc.
    assert g_loss_nonsaturating(torch.tensor([2.0])).item() == pytest.approx(math.log1p(math.exp(-2)))
    assert d_loss_bce(torch.tensor([1.0]), torch.tensor([-1.0])).item() == pytest.approx(2 * math.log1p(math.exp(-1)))
    assert set(G_LOSSES) == {"nonsaturating", "saturating"}


def test_losses_are_stable_at_extreme_logits():
    big = torch.tensor([-200.0, 200.0])
    for value in (d_loss_bce(big, big), g_loss_nonsaturating(big), g_loss_saturating(big)):
        assert torch.isfinite(value)
    # a perfect discriminator has (almost) zero loss, not nan
    assert d_loss_bce(torch.tensor([100.0]), torch.tensor([-100.0])).item() == pytest.approx(0.0, abs=1e-6)
    assert g_loss_nonsaturating(torch.tensor([-100.0])).item() == pytest.approx(100.0)


def _grad(fn, *logits):
    ts = [torch.tensor(v, requires_grad=True) for v in logits]
    fn(*ts).backward()
    return [t.grad for t in ts]


def test_gradient_signs():
    for v in (-3.0, 0.0, 3.0):
        g_real, g_fake = _grad(d_loss_bce, [v], [v])
        assert g_real.item() < 0  # descending the D loss raises D(real)
        assert g_fake.item() > 0  # ... and lowers D(fake)
        (g_ns,) = _grad(g_loss_nonsaturating, [v])
        (g_sat,) = _grad(g_loss_saturating, [v])
        assert g_ns.item() < 0 and g_sat.item() < 0  # both push the fake logit up
    # at logit 0 both have the same slope -1/2
    assert _grad(g_loss_nonsaturating, [0.0])[0].item() == pytest.approx(-0.5)
    assert _grad(g_loss_saturating, [0.0])[0].item() == pytest.approx(-0.5)


def test_saturating_gradient_vanishes_when_d_rejects_fakes():
    """d/dl [-softplus(l)] = -sigmoid(l) -> 0 as D(G(z)) = sigmoid(l) -> 0; the non-saturating
    loss' slope -sigmoid(-l) -> -1 instead."""
    previous = None
    for l in (-2.0, -5.0, -10.0, -20.0):
        (g_sat,) = _grad(g_loss_saturating, [l])
        (g_ns,) = _grad(g_loss_nonsaturating, [l])
        assert g_sat.item() == pytest.approx(-torch.sigmoid(torch.tensor(l)).item(), rel=1e-5)
        assert g_ns.item() == pytest.approx(-torch.sigmoid(torch.tensor(-l)).item(), rel=1e-5)
        if previous is not None:
            assert abs(g_sat.item()) < abs(previous) / 10
        previous = g_sat.item()
        assert abs(g_ns.item()) > 0.85
    assert abs(_grad(g_loss_saturating, [-20.0])[0].item()) < 1e-8
    assert _grad(g_loss_nonsaturating, [-20.0])[0].item() == pytest.approx(-1.0)
