"""GAN losses at known logits, the gradient penalty on a hand-computed case, spectral norm."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from imagegen_lib.gan import losses as L
from imagegen_lib.toy.models import ToyDiscriminator


def test_bce_losses_at_known_logits():
    zero = torch.zeros(4)
    # D(x) = D(G(z)) = 1/2: the equilibrium value 2 log 2 for D, log 2 for the non-saturating G.
    assert L.d_loss_bce(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert L.g_loss_nonsaturating(zero).item() == pytest.approx(math.log(2))
    assert L.g_loss_saturating(zero).item() == pytest.approx(-math.log(2))
    # A confident, correct D: loss -> 0. Saturating G loss -> 0 from below (nothing left to gain).
    big = torch.full((4,), 20.0)
    assert L.d_loss_bce(big, -big).item() == pytest.approx(0.0, abs=1e-8)
    assert L.g_loss_saturating(-big).item() == pytest.approx(0.0, abs=1e-8)
    assert L.g_loss_nonsaturating(-big).item() == pytest.approx(20.0, rel=1e-6)
    # Extreme logits stay finite (softplus forms, no log(sigmoid) underflow).
    huge = torch.tensor([1e4, -1e4])
    assert torch.isfinite(L.d_loss_bce(huge, huge)) and torch.isfinite(L.g_loss_nonsaturating(huge))


def test_generator_loss_gradients_wrt_logit():
    # d/dl [-softplus(l)] = -sigmoid(l) -> 0 as D rejects fakes (l -> -inf): saturation.
    # d/dl [softplus(-l)] = -(1 - sigmoid(l)) -> -1: the non-saturating loss keeps a gradient.
    l = torch.tensor([-8.0], requires_grad=True)
    (g_sat,) = torch.autograd.grad(L.g_loss_saturating(l), l)
    (g_ns,) = torch.autograd.grad(L.g_loss_nonsaturating(l), l)
    assert g_sat.item() == pytest.approx(-torch.sigmoid(torch.tensor(-8.0)).item())
    assert abs(g_sat.item()) < 1e-3 and g_ns.item() == pytest.approx(-1.0, abs=1e-3)


def test_label_smoothing_optimum():
    # With real target 0.9, the loss on a real logit is minimised where sigmoid(l) = 0.9.
    l = torch.linspace(-5, 5, 10001)
    vals = torch.stack([L.d_loss_bce_smoothed(x.view(1), torch.tensor([-50.0]), 0.9) for x in l])
    assert torch.sigmoid(l[vals.argmin()]).item() == pytest.approx(0.9, abs=1e-3)
    assert L.d_loss_bce_smoothed(torch.zeros(3), torch.zeros(3), 1.0).item() == pytest.approx(2 * math.log(2))


def test_wgan_and_hinge_signs():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0])
    assert L.wgan_critic_loss(real, fake).item() == pytest.approx(0.0 - 3.0)  # E f(fake) - E f(real)
    assert L.wgan_generator_loss(fake).item() == pytest.approx(0.0)
    # Hinge: real scores >= 1 and fake scores <= -1 cost nothing.
    assert L.hinge_d_loss(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -2.0])).item() == 0.0
    assert L.hinge_d_loss(torch.tensor([0.0]), torch.tensor([0.0])).item() == pytest.approx(2.0)
    assert L.hinge_g_loss(torch.tensor([0.5, 1.5])).item() == pytest.approx(-1.0)


class Linear(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x):
        return x @ self.w


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.6, 0.8], [0.1, 0.0]])
def test_gradient_penalty_linear_critic(w):
    # f(x) = w·x has ∇f = w everywhere, so GP = λ (||w|| - 1)² whatever the interpolation points.
    critic = Linear(w)
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    gp = L.gradient_penalty(critic, real, fake, weight=10.0)
    assert gp.item() == pytest.approx(10.0 * (math.hypot(*w) - 1) ** 2, rel=1e-5, abs=1e-6)
    gp.backward()  # differentiable w.r.t. the critic's weights (create_graph=True)
    norm = math.hypot(*w)
    expected = 10.0 * 2 * (norm - 1) * torch.tensor(w) / norm
    assert torch.allclose(critic.w.grad, expected, rtol=1e-4, atol=1e-6)


def test_r1_penalty_linear_critic():
    critic = Linear([3.0, 4.0])
    assert L.r1_penalty(critic, torch.randn(8, 2), gamma=2.0).item() == pytest.approx(25.0)


@pytest.mark.parametrize("gamma", [0.1, 2.0, 10.0])
def test_r1_from_scores_linear_critic_and_its_gradient(gamma):
    """D(x) = w·x has ∇_x D = w at every x: the penalty is γ/2·||w||² exactly, and its gradient
    w.r.t. the critic's weights (what training follows, through create_graph) is γ·w."""
    critic = Linear([3.0, -4.0, 12.0])
    x = torch.randn(5, 3).requires_grad_(True)
    penalty = L.r1_from_scores(critic(x), x, gamma)
    assert penalty.item() == pytest.approx(gamma / 2 * 169.0, rel=1e-6)
    assert penalty.item() == pytest.approx(L.r1_penalty(critic, x, gamma).item(), rel=1e-6)
    penalty.backward()
    assert torch.allclose(critic.w.grad, gamma * critic.w.detach(), rtol=1e-6)


def test_instance_noise():
    x = torch.zeros(20000, 2)
    assert L.add_instance_noise(x, 0.0) is x
    y = L.add_instance_noise(x, 0.5, torch.Generator().manual_seed(0))
    assert y.std().item() == pytest.approx(0.5, rel=0.02)


def test_spectral_norm_layers_have_unit_singular_value():
    torch.manual_seed(0)
    D = ToyDiscriminator(hidden=64, spectral_norm=True)
    x = torch.randn(32, 2)
    for _ in range(30):  # each training-mode forward pass runs one power iteration
        D(x)
    D.eval()
    linears = [m for m in D.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 4
    for m in linears:
        sigma = torch.linalg.matrix_norm(m.weight.detach(), ord=2).item()  # the normalised weight
        assert sigma == pytest.approx(1.0, abs=1e-3)
    # Without spectral norm the default init is far from 1-Lipschitz per layer.
    plain = ToyDiscriminator(hidden=64)
    assert torch.linalg.matrix_norm(plain.body[2].weight, ord=2).item() > 1.05
