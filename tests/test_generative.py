"""Q5's models — conditional GAN, VAE, DDPM — their maths, their training loops, the CLI, the table.

Everything runs on tiny models and tiny data (a few hundred images, widths of 4-16); the checks
on the *shipped* checkpoints (class accuracy of the conditional GAN, the DDPM's coverage) live in
tests/test_checkpoints.py.
"""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from PIL import Image

from imagegen_lib import cli
from imagegen_lib.generators.samplers import DDPMSampler, load_sampler, measure_sampling_time
from imagegen_lib.gan.conditional import balanced_labels, build_cgan, check_labels
from imagegen_lib.diffusion.samplers import ddim_timesteps, sample_ancestral, sample_ddim
from imagegen_lib.diffusion.schedules import NoiseSchedule, make_betas
from imagegen_lib.diffusion.unet import UNet, timestep_embedding
from imagegen_lib.vae.model import ConvVAE, elbo_terms
from imagegen_lib.diffusion.train import DDPMConfig, load_ddpm, train_ddpm
from imagegen_lib.vae.train import VAEConfig, train_vae

TINY = ["--limit", "128", "--batch-size", "32", "--device", "cpu", "--no-progress"]
TINY_MODEL = {"cgan": ["--width", "8", "--z-dim", "8"],
              "vae": ["--width", "4", "--hidden", "8", "--latent-dim", "2"],
              "ddpm": ["--channels", "4,4,8", "--T", "20", "--warmup", "2"],
              "flow": ["--channels", "4,4,8", "--warmup", "2", "--cond-drop", "0.2"]}  # class-conditional
EXPORT = {"cgan": "generator", "vae": "model", "ddpm": "model", "flow": "model"}


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("IMAGEGEN_DEBUG", raising=False)


def _train(model: str, out, epochs: int = 1, *extra) -> int:
    return cli.main(["train", model, "--epochs", str(epochs), *TINY, *TINY_MODEL[model], "--out", str(out), *extra])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run per model made by the real CLI: 128 images / batch 32 = 4 steps."""
    root = tmp_path_factory.mktemp("q5")
    for model in TINY_MODEL:
        assert _train(model, root / model) == 0
    return root


# ---------------------------------------------------------------------------------------------
# Conditional GAN
# ---------------------------------------------------------------------------------------------

def test_cgan_shapes_and_label_dependence():
    torch.manual_seed(0)
    G, D = build_cgan(z_dim=8, width=4)
    z, y = torch.randn(6, 8), torch.arange(6)
    G.eval(), D.eval()
    with torch.no_grad():
        x = G(z, y)
        assert x.shape == (6, 1, 28, 28) and x.abs().max() <= 1
        assert D(x, y).shape == (6,)
        # the label changes both networks' outputs: G draws another image, D judges it differently
        assert not torch.allclose(G(z, (y + 1) % 10), x)
        assert not torch.allclose(D(x, (y + 1) % 10), D(x, y))
    assert (balanced_labels(23) == torch.arange(23) % 10).all()


@pytest.mark.parametrize("labels, n, match", [
    (torch.tensor([0.0, 1.0]), 2, "integer"),
    (torch.tensor([0, 10]), 2, r"0\.\.9"),
    (torch.tensor([-1, 3]), 2, r"0\.\.9"),
    (torch.tensor([1, 2, 3]), 2, "3 labels for 2 images"),
    (torch.tensor([[1, 2]]), 2, "1-D"),
])
def test_bad_labels_are_rejected(labels, n, match):
    with pytest.raises(ValueError, match=match):
        check_labels(labels, n=n)


def test_projection_discriminator_learns_the_class(mnist_tiny):
    """A few D steps on (image, its label) vs (image, a wrong label) teach D to tell them apart."""
    from imagegen_lib.gan.losses import d_loss_bce

    x, y = mnist_tiny
    torch.manual_seed(0)
    _, D = build_cgan(width=8)
    opt = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    wrong = (y + torch.randint(1, 10, y.shape, generator=torch.Generator().manual_seed(0))) % 10
    losses = []
    for _ in range(15):
        loss = d_loss_bce(D(x, y), D(x, wrong))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():  # in training mode, as D runs during GAN training (batch statistics)
        assert (D(x, y) > D(x, wrong)).float().mean() > 0.9


def test_cgan_training_step_lowers_d_loss_against_a_fixed_generator(mnist_tiny):
    from imagegen_lib.gan.losses import g_loss_nonsaturating
    from imagegen_lib.gan.step import gan_train_step

    x, y = mnist_tiny
    torch.manual_seed(0)
    G, D = build_cgan(z_dim=8, width=8)
    opt_g = torch.optim.SGD(G.parameters(), lr=0.0)  # G frozen: only D learns
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    z = torch.randn(len(x), 8, generator=torch.Generator().manual_seed(1))
    first = gan_train_step(G, D, opt_g, opt_d, x, z, g_loss_nonsaturating, labels=y)["loss_d"]
    for _ in range(10):
        last = gan_train_step(G, D, opt_g, opt_d, x, z, g_loss_nonsaturating, labels=y)["loss_d"]
    assert float(last) < 0.7 * float(first)


# ---------------------------------------------------------------------------------------------
# VAE
# ---------------------------------------------------------------------------------------------

def test_vae_shapes():
    vae = ConvVAE(latent_dim=3, width=4, hidden=8)
    x = torch.rand(5, 1, 28, 28)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (5, 3)
    logits, mu2, _ = vae(x)
    assert logits.shape == (5, 1, 28, 28) and torch.equal(mu, mu2)
    assert vae.decode(torch.randn(2, 3)).shape == (2, 1, 28, 28)
    r = vae.reconstruct(x)
    assert r.shape == x.shape and 0 <= r.min() and r.max() <= 1


def test_latent_traversal_sweeps_one_dimension_per_row():
    from imagegen_lib.vae.model import latent_traversal

    torch.manual_seed(0)
    vae = ConvVAE(latent_dim=3, width=4, hidden=8)
    grid = latent_traversal(vae, dims=[0, 2], values=torch.tensor([-1.0, 0.0, 1.0]))
    assert grid.shape == (6, 1, 28, 28) and 0 <= grid.min() and grid.max() <= 1
    expected = torch.sigmoid(vae.decode(torch.tensor([[0.0, 0.0, -1.0]])))  # row 2 (dim 2), value −1
    assert torch.allclose(grid[3], expected[0], atol=1e-6)
    assert torch.allclose(grid[1], grid[4], atol=1e-6)  # value 0 in any dimension: the same image


def test_reparameterisation_is_exact_and_differentiable():
    mu = torch.tensor([[0.5, -1.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, math.log(4.0)]], requires_grad=True)
    noise = torch.tensor([[1.0, -0.5]])
    z = ConvVAE.reparameterize(mu, logvar, noise)
    assert torch.allclose(z, torch.tensor([[1.5, -2.0]]))  # μ + σ ε with σ = 1, 2
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones(1, 2))
    assert torch.allclose(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * noise)  # d/dlogvar of σε


def test_elbo_terms_on_a_hand_checked_case():
    # Image 1: all pixels 1, logits 2 -> BCE per pixel = log(1 + e^-2). Image 2: pixels 0, logits -3 -> log(1 + e^-3).
    x = torch.stack([torch.ones(1, 28, 28), torch.zeros(1, 28, 28)])
    logits = torch.stack([torch.full((1, 28, 28), 2.0), torch.full((1, 28, 28), -3.0)])
    # q: image 1 N((1, 0), diag(1, 4)); image 2 N((0, 0), I)
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [0.0, 0.0]])
    t = elbo_terms(x, logits, mu, logvar, beta=2.0)
    recon = (784 * math.log1p(math.exp(-2)) + 784 * math.log1p(math.exp(-3))) / 2  # nats per image, mean
    kl = (0.5 * ((1 + 1 - 1 - 0) + (0 + 4 - 1 - math.log(4))) + 0.0) / 2  # ½ Σ μ² + σ² − 1 − log σ²
    assert float(t["recon"]) == pytest.approx(recon, rel=1e-5)
    assert float(t["kl"]) == pytest.approx(kl, rel=1e-6)
    assert float(t["loss"]) == pytest.approx(recon + 2 * kl, rel=1e-5)
    assert float(t["elbo"]) == pytest.approx(-(recon + kl), rel=1e-5)
    # the KL agrees with torch.distributions
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    assert float(t["kl"]) == pytest.approx(float(torch.distributions.kl_divergence(q, p).sum(1).mean()), rel=1e-6)


def test_elbo_rejects_tanh_range_images():
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    with pytest.raises(ValueError, match=r"\[0, 1\].*\(x \+ 1\) / 2"):
        elbo_terms(x, torch.zeros_like(x), torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        train_vae(VAEConfig(epochs=1, batch_size=2), images=x, progress=False)


def test_vae_training_lowers_the_loss(mnist_tiny):
    x, _ = mnist_tiny
    run = train_vae(VAEConfig(width=8, hidden=32, latent_dim=4, epochs=8, batch_size=32, lr=3e-3, log_every=8,
                              sample_every=1000), images=(x + 1) / 2, progress=False)
    losses = [r["loss"] for r in run.history]
    assert losses[-1] < 0.75 * losses[0], losses
    assert all(r["recon"] > 0 and r["kl"] >= 0 for r in run.history)


# ---------------------------------------------------------------------------------------------
# DDPM: the forward process
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedules_are_monotone_and_end_in_noise(kind):
    betas = make_betas(kind, 1000)
    s = NoiseSchedule(kind, 1000)
    assert betas.shape == (1000,) and (betas > 0).all() and (betas < 1).all()
    assert (betas[1:] >= betas[:-1]).all()  # more noise per step as t grows
    assert (s.alpha_bar[1:] < s.alpha_bar[:-1]).all()  # the signal only ever shrinks
    assert float(s.alpha_bar[0]) > 0.99 and float(s.alpha_bar[-1]) < 1e-3  # x_T is (almost) pure noise
    if kind == "linear":
        assert float(betas[0]) == pytest.approx(1e-4) and float(betas[-1]) == pytest.approx(0.02)
        assert float(s.alpha_bar[-1]) == pytest.approx(float(torch.prod(1 - betas)), rel=1e-5)
    with pytest.raises(ValueError, match="unknown noise schedule"):
        make_betas("quadratic")


def test_q_sample_is_the_closed_form_with_fixed_noise():
    s = NoiseSchedule("linear", 1000)
    x0 = torch.rand(3, 1, 28, 28) * 2 - 1
    noise = torch.randn(3, 1, 28, 28)
    t = torch.tensor([0, 499, 999])
    ab = torch.cumprod(1 - make_betas("linear", 1000), 0)[t].view(-1, 1, 1, 1)  # float64, by hand
    expected = ab.sqrt() * x0.double() + (1 - ab).sqrt() * noise.double()
    assert torch.allclose(s.q_sample(x0, t, noise).double(), expected, atol=1e-5)  # float32 vs float64
    assert torch.allclose(s.predict_x0(s.q_sample(x0, t, noise), t, noise), x0, atol=2e-3)  # inverts, given ε


def test_q_sample_mean_and_variance_match_the_closed_form_statistically():
    """Many draws of x_t for one fixed x_0: per-pixel mean √ᾱ_t x_0 and variance 1 − ᾱ_t."""
    s = NoiseSchedule("linear", 1000)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(1, 1, 28, 28, generator=gen) * 2 - 1
    m = 4000
    t = torch.full((m,), 300)
    xt = s.q_sample(x0.expand(m, -1, -1, -1), t, torch.randn(m, 1, 28, 28, generator=gen))
    ab = float(s.alpha_bar[300])
    se = math.sqrt((1 - ab) / m)
    assert (xt.mean(0) - math.sqrt(ab) * x0[0]).abs().max() < 5 * se
    assert (xt.var(0) / (1 - ab) - 1).abs().max() < 5 * math.sqrt(2 / m)


def test_closed_form_matches_running_the_chain():
    """Iterating x_t = √(1−β_t) x_{t−1} + √β_t ε for t steps gives the law of the one-shot q(x_t | x_0)."""
    s = NoiseSchedule("linear", 1000)
    gen = torch.Generator().manual_seed(1)
    m, t = 20_000, 200
    x0 = torch.linspace(-1, 1, 8)
    x = x0.expand(m, 8).clone()
    for k in range(t):
        x = (1 - s.betas[k]).sqrt() * x + s.betas[k].sqrt() * torch.randn(m, 8, generator=gen)
    ab = float(s.alpha_bar[t - 1])
    assert torch.allclose(x.mean(0), math.sqrt(ab) * x0, atol=5 * math.sqrt((1 - ab) / m))
    assert torch.allclose(x.var(0), torch.full((8,), 1 - ab), rtol=5 * math.sqrt(2 / m))


# ---------------------------------------------------------------------------------------------
# DDPM: network and samplers
# ---------------------------------------------------------------------------------------------

def test_unet_shapes_and_zero_start():
    net = UNet((4, 8, 8))
    x, t = torch.randn(3, 1, 28, 28), torch.tensor([0, 5, 19])
    out = net(x, t)
    assert out.shape == (3, 1, 28, 28)
    assert torch.equal(out, torch.zeros_like(out))  # zero-initialised last conv: ε̂ = 0 before training
    emb = timestep_embedding(torch.tensor([0, 7]), 16)
    assert emb.shape == (2, 16) and torch.equal(emb[0], torch.cat([torch.zeros(8), torch.ones(8)]))
    assert UNet((4, 8, 8), attention=False)(x, t).shape == (3, 1, 28, 28)


def _random_unet(seed=0):
    torch.manual_seed(seed)
    net = UNet((4, 4, 8)).eval()
    torch.nn.init.normal_(net.conv_out.weight, 0, 0.3)  # a non-trivial ε̂ (untrained, but not zero)
    return net


def test_ddim_timesteps():
    assert ddim_timesteps(1000, 1000) == list(range(999, -1, -1))
    taus = ddim_timesteps(1000, 50)
    assert len(taus) == 50 and taus[0] == 999 and taus[-1] == 0 and taus == sorted(taus, reverse=True)
    with pytest.raises(ValueError, match="between 1 and T"):
        ddim_timesteps(20, 21)


def test_ddim_with_all_steps_and_eta_1_is_the_ancestral_sampler():
    """DDIM's update with S = T and η = 1 is the ancestral step rearranged: same noise, same images."""
    net, s = _random_unet(), NoiseSchedule("linear", 20)
    a = sample_ancestral(net, s, 4, torch.Generator().manual_seed(3))
    b = sample_ddim(net, s, 4, torch.Generator().manual_seed(3), steps=20, eta=1.0)
    assert torch.allclose(a, b, atol=1e-5)
    assert a.abs().max() <= 1 + 1e-5


def test_ddim_eta_0_is_deterministic_given_the_seed():
    net, s = _random_unet(), NoiseSchedule("cosine", 20)
    trajectory = []
    a = sample_ddim(net, s, 3, torch.Generator().manual_seed(0), steps=5, trajectory=trajectory)
    b = sample_ddim(net, s, 3, torch.Generator().manual_seed(0), steps=5)
    c = sample_ddim(net, s, 3, torch.Generator().manual_seed(1), steps=5)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert ddim_timesteps(20, 5) == [19, 14, 10, 5, 0]
    assert [t for t, _ in trajectory] == [20, 15, 11, 6, 1, 0]  # x_T = the input of step 19 (paper t = 20) ... x_0
    assert torch.equal(trajectory[-1][1], a)


def test_ddpm_training_lowers_the_loss(mnist_tiny):
    x, _ = mnist_tiny
    run = train_ddpm(DDPMConfig(channels=(8, 8, 16), T=100, epochs=5, batch_size=32, warmup=5, lr=2e-3,
                                log_every=10, sample_every=1000), images=x, progress=False)
    losses = [r["loss"] for r in run.history]
    assert losses[0] > 0.5 and losses[-1] < 0.6 * losses[0], losses  # from ~1 (ε̂ = 0 at the start)
    # the EMA weights are what gets exported, and they moved away from the initial ones
    assert not torch.equal(run.ema.conv_out.weight, torch.zeros_like(run.ema.conv_out.weight))


def test_ddpm_rejects_unit_range_images():
    with pytest.raises(ValueError, match=r"\[0, 1\] data.*x \* 2 - 1"):
        train_ddpm(DDPMConfig(epochs=1, batch_size=2), images=torch.rand(4, 1, 28, 28) * 0.5 + 0.5, progress=False)
    with pytest.raises(ValueError, match=r"must lie in \[-1, 1\], got \[0.*, 5\]"):
        train_ddpm(DDPMConfig(epochs=1, batch_size=2), images=torch.rand(4, 1, 28, 28) * 5, progress=False)


@pytest.mark.parametrize("kw, match", [
    (dict(schedule="quadratic"), "unknown noise schedule"),
    (dict(channels=(8, 8)), "three positive widths"),
    (dict(channels=(8, 8, 6)), "divisible by 4"),
    (dict(ema=1.0), r"ema must be in \[0, 1\)"),
    (dict(dataset="cifar10"), "unknown dataset"),
])
def test_bad_ddpm_config(kw, match):
    with pytest.raises(ValueError, match=match):
        DDPMConfig(**kw)


# ---------------------------------------------------------------------------------------------
# The CLI on tiny runs: train, resume, time budget, sample, eval
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", list(TINY_MODEL))
def test_cli_trains_a_loadable_checkpoint(runs, model):
    run = runs / model
    stem = run / EXPORT[model]
    for name in ("last.safetensors", "last.json", f"{EXPORT[model]}.safetensors", f"{EXPORT[model]}.json"):
        assert (run / name).is_file(), name
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert meta["command"].startswith(f"imagegen train {model} --epochs 1") and meta["step"] == 4
    sampler = load_sampler(stem)
    x = sampler.sample(5, seed=0)
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, sampler.sample(5, seed=0))  # a seed fixes the samples
    assert (run / "samples" / "step_0000004.png").is_file()


@pytest.mark.parametrize("model", list(TINY_MODEL))
def test_resume_continues_exactly(runs, model, tmp_path):
    """1 epoch + resume to 2 epochs == 2 epochs straight, bit for bit (weights, EMA, history)."""
    straight = tmp_path / "straight"
    assert _train(model, straight, 2) == 0
    resumed = tmp_path / "resumed"
    shutil.copytree(runs / model, resumed)
    assert _train(model, resumed, 2, "--resume") == 0
    from imagegen_lib.core.checkpoint import load_checkpoint

    a, meta_a = load_checkpoint(straight / "last")
    b, meta_b = load_checkpoint(resumed / "last")
    assert meta_a["step"] == meta_b["step"] == 8
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), model
    # each call logs its last step: the resumed run's history has a row at the break
    assert [r["step"] for r in meta_b["history"]] == [4, 8] and [r["step"] for r in meta_a["history"]] == [8]


def test_resume_with_other_settings_is_refused(runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs / "ddpm", run)
    args = ["train", "ddpm", "--epochs", "2", *TINY, "--channels", "4,4,8", "--T", "30", "--out", str(run), "--resume"]
    assert cli.main(args) == 2
    assert "T=30 (run has 20)" in capsys.readouterr().err


def test_time_budget_stops_and_still_writes_the_final_checkpoint(tmp_path, capsys):
    out = tmp_path / "budget"
    assert _train("ddpm", out, 1000, "--time-budget", "0.5", "--ckpt-every", "100000") == 0
    printed = capsys.readouterr().out
    assert "(time budget reached)" in printed
    last = json.loads((out / "last.json").read_text())
    assert 0 < last["step"] < 4000  # 1000 epochs of 4 steps would be 4000
    _, _, meta = load_ddpm(out / "model")
    assert meta["step"] == last["step"] and meta["weights"] == "ema"


def test_sample_cli_for_every_kind(runs, tmp_path, capsys):
    out = tmp_path / "g.png"
    assert cli.main(["sample", str(runs / "cgan" / "generator.safetensors"), "--n", "20", "--nrow", "10",
                     "--out", str(out), "--device", "cpu"]) == 0
    with Image.open(out) as img:
        assert img.size == (2 * (10 * 30 + 2), 2 * (2 * 30 + 2))
    assert cli.main(["sample", str(runs / "cgan" / "generator"), "--n", "4", "--label", "7", "--out", str(out),
                     "--device", "cpu"]) == 0
    assert cli.main(["sample", str(runs / "vae" / "model"), "--n", "4", "--out", str(out), "--device", "cpu"]) == 0
    assert cli.main(["sample", str(runs / "ddpm" / "model"), "--n", "4", "--sampler", "ddim", "--steps", "5",
                     "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "4 samples from cgan (mnist, class 7)" in printed and "4 samples from vae (mnist)" in printed
    assert "4 samples from ddpm (mnist, ddim5)" in printed


def test_cgan_label_fixes_the_class_the_sampler_is_asked_for(runs):
    sampler = load_sampler(runs / "cgan" / "generator")
    assert sampler.conditional and sampler.kind == "cgan"
    sevens = sampler.sample(20, seed=0, labels=torch.full((20,), 7))
    balanced = sampler.sample(20, seed=0)  # 0, 1, ..., 9, 0, ...: image 7 is a 7, from the same noise
    assert torch.allclose(sevens[7], balanced[7], atol=1e-6)
    assert not torch.allclose(sevens[1], balanced[1], atol=1e-6)  # same noise, class 7 instead of class 1
    assert sampler.class_grid(rows=2).shape == (20, 1, 28, 28)


def test_conditional_flow_model_samples_with_guidance_and_every_ode_solver(runs, tmp_path, capsys):
    sampler = load_sampler(runs / "flow" / "model")
    assert sampler.kind == "flow" and sampler.conditional and sampler.prediction == "velocity"
    for options in ({}, {"sampler": "heun", "steps": 3}, {"sampler": "dpmpp2m", "steps": 4, "guidance": 2.0},
                    {"sampler": "euler", "steps": 2, "guidance": 0.0}):
        x = sampler.sample(12, seed=1, **options)
        assert x.shape == (12, 1, 28, 28) and x.abs().max() <= 1, options
    assert sampler.sampler_key(sampler="heun", steps=3, guidance=2) == "heun3_w2"
    assert sampler.network_calls(sampler="heun", steps=3, guidance=2) == 10
    sevens = sampler.sample(10, seed=0, labels=torch.full((10,), 7), sampler="euler", steps=3)
    assert torch.allclose(sevens[7], sampler.sample(10, seed=0, sampler="euler", steps=3)[7], atol=1e-6)
    out = tmp_path / "g.png"
    assert cli.main(["sample", str(runs / "flow" / "model"), "--n", "10", "--label", "3", "--guidance", "3",
                     "--sampler", "heun", "--steps", "2", "--device", "cpu", "--out", str(out)]) == 0
    assert out.is_file() and "heun2_w3" in capsys.readouterr().out
    for options, message in [({"sampler": "ancestral"}, "no discrete noise chain"),
                             ({"sampler": "ddim"}, "no discrete noise chain"),
                             ({"guidance": -1.0}, "must be >= 0")]:
        with pytest.raises(ValueError, match=message):
            sampler.sample(2, **options)


def test_a_v_prediction_model_with_zero_terminal_snr_trains_and_samples(tmp_path):
    from imagegen_lib.core.data import load_images

    images, labels = load_images("mnist", "train", (-1, 1), limit=64)
    config = DDPMConfig(channels=(4, 4, 8), attention=False, T=20, epochs=1, batch_size=32, warmup=2,
                        prediction="v", zero_terminal_snr=True, min_snr_gamma=5.0, cond_drop=0.2)
    run = train_ddpm(config, images, labels=labels, out_dir=tmp_path / "run", device="cpu", progress=False)
    assert run.steps == 2 and all(math.isfinite(r["loss"]) for r in run.history)
    sampler = load_sampler(tmp_path / "run" / "model")
    assert sampler.prediction == "v" and sampler.schedule.zero_terminal_snr
    for options in ({}, {"sampler": "ddim", "steps": 5, "guidance": 1.5}, {"sampler": "heun", "steps": 4},
                    {"sampler": "dpmpp2m", "steps": 5}):
        x = sampler.sample(4, seed=0, **options)
        assert torch.isfinite(x).all() and x.abs().max() <= 1, options
    with pytest.raises(ValueError, match="one label per training image"):
        train_ddpm(config, images, device="cpu", progress=False)


@pytest.mark.parametrize("argv, message", [
    (["sample", "CGAN", "--label", "12"], "labels must lie in 0..9"),
    (["sample", "VAE", "--label", "3"], "--label needs a class-conditional model"),
    (["sample", "DDPM", "--guidance", "2"], "needs a class-conditional model"),
    (["sample", "DDPM", "--sampler", "heun", "--eta", "0.5"], "eta applies to the DDIM sampler only"),
    (["sample", "VAE", "--sampler", "ddim"], "apply to diffusion models only"),
    (["sample", "DDPM", "--sampler", "ancestral", "--steps", "5"], "takes all T=20 steps"),
    (["sample", "DDPM", "--sampler", "ddim", "--steps", "50"], "between 1 and T=20"),
    (["sample", "DDPM_STATE"], "pass the run's model.safetensors"),
    (["eval", "VAE", "--steps", "10"], "apply to diffusion models only"),
])
def test_bad_sampling_requests(runs, argv, message, tmp_path, capsys):
    paths = {"CGAN": runs / "cgan" / "generator", "VAE": runs / "vae" / "model", "DDPM": runs / "ddpm" / "model",
             "DDPM_STATE": runs / "ddpm" / "last.safetensors"}
    argv = [str(paths.get(a, a)) for a in argv] + ["--device", "cpu"]
    if argv[0] == "sample":
        argv += ["--out", str(tmp_path / "g.png")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "imagegen: error:" in err and message in err
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["train", "ddpm", "--schedule", "quadratic", "--out", "OUT"], "invalid choice: 'quadratic'"),
    (["train", "ddpm", "--channels", "8,8", "--out", "OUT"], "expected three positive widths"),
    (["train", "vae", "--beta", "-1", "--out", "OUT"], "must be >= 0"),
    (["train", "ddpm", "--time-budget", "0", "--out", "OUT"], "must be > 0"),
    (["train", "diffusion", "--out", "OUT"], "invalid choice: 'diffusion'"),
    (["eval", "x.safetensors", "--sampler", "lms"], "invalid choice: 'lms'"),
])
def test_bad_flags(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        cli.main([str(out) if a == "OUT" else a for a in argv])
    assert info.value.code == 2 and message in capsys.readouterr().err
    assert not out.exists()


def test_eval_cli_for_every_kind(runs, tmp_path, cached_features):
    """`imagegen eval` scores each kind (tiny n) and names the sampler and its speed.

    The three runs score against the same 10,000 test images: their features are extracted once
    per session (conftest.FeatureCache), not once per run.
    """
    results = {}
    for model, extra in (("cgan", []), ("vae", []), ("ddpm", ["--sampler", "ddim", "--steps", "3"])):
        out = tmp_path / f"{model}.json"
        assert cli.main(["eval", str(runs / model / EXPORT[model]), "--n", "150", "--device", "cpu",
                         "--json", str(out), *extra]) == 0
        results[model] = json.loads(out.read_text())
    for model, r in results.items():
        assert r["n"] == 150 and math.isfinite(r["fid"]) and r["fid"] > 0 and 0 <= r["coverage"] <= 1
        assert r["sample_seconds_per_1k"] > 0 and r["sample_device"].startswith("cpu")
        assert r["run"]["command"].startswith("imagegen eval")
    assert results["ddpm"]["sampler"] == "ddim3" and results["ddpm"]["kind"] == "ddpm"
    assert results["cgan"]["sampler"] is None and results["cgan"]["arch"] == "cgan"
    decoder = load_sampler(runs / "vae" / "model").vae.decoder
    assert results["vae"]["n_params"] == sum(p.numel() for p in decoder.parameters())  # what sampling runs


def test_gan_sampling_is_unchanged_for_the_shipped_dcgan():
    """The common interface draws exactly what sample_images drew: the GANs' recorded metrics still hold."""
    from imagegen_lib.core.manifest import CHECKPOINT_DIR
    from imagegen_lib.gan.train import load_generator, sample_images

    G, _ = load_generator(CHECKPOINT_DIR / "dcgan_mnist")
    assert torch.equal(load_sampler(CHECKPOINT_DIR / "dcgan_mnist").sample(50, seed=3), sample_images(G, 50, seed=3))


# ---------------------------------------------------------------------------------------------
# Manifest records, timing, the comparison table
# ---------------------------------------------------------------------------------------------

def test_manifest_metrics_keys_and_nested_merge(runs, tmp_path):
    from imagegen_lib.cli.eval import manifest_metrics
    from imagegen_lib.core.manifest import read_manifest, ship, update_metrics

    ship(runs / "ddpm" / "model", "ddpm_tiny", directory=tmp_path)
    base = {"fid": 1.0, "coverage": 1.0, "eval_n": 10_000, "eval_seed": 0}
    full = {"sampler": "ancestral20", "default_sampler": True, "n": 10_000,
            "sample_seconds_per_1k": 2.0, "sample_device": "NVIDIA H100"}
    update_metrics("ddpm_tiny", manifest_metrics(full, base), directory=tmp_path)
    ddim = {**full, "sampler": "ddim5", "default_sampler": False}
    update_metrics("ddpm_tiny", manifest_metrics(ddim, {**base, "fid": 2.0}), directory=tmp_path)
    check = {**full, "sampler": "ddim10", "default_sampler": False, "n": 200, "sample_device": "cpu"}
    update_metrics("ddpm_tiny", manifest_metrics(check, {**base, "fid": 3.0, "eval_n": 200}), directory=tmp_path)
    m = read_manifest(tmp_path)["checkpoints"]["ddpm_tiny"]["metrics"]
    assert sorted(m["samplers"]) == ["ancestral20", "ddim10_n200", "ddim5"]  # merged, not replaced
    assert m["fid"] == 1.0 and m["sampler"] == "ancestral20"  # the default sampler is the top-level record
    assert m["samplers"]["ddim5"]["fid"] == 2.0 and m["samplers"]["ddim10_n200"]["sample_device"] == "cpu"
    gan = manifest_metrics({"sampler": None, "n": 10_000, "sample_seconds_per_1k": 0.1, "sample_device": "cpu"}, base)
    assert "samplers" not in gan and gan["fid"] == 1.0 and gan["sample_seconds_per_1k"] == 0.1


def test_measure_sampling_time(runs):
    gan = measure_sampling_time(load_sampler(runs / "cgan" / "generator"), batch=50, repeats=2)
    assert gan["seconds_per_1k"] > 0 and "median of 2 runs of 50 images, x20" in gan["method"]
    ddpm = load_sampler(runs / "ddpm" / "model")
    assert isinstance(ddpm, DDPMSampler)
    whole = measure_sampling_time(ddpm, batch=10, probe_steps=2)
    assert whole["calls"] == 20 and whole["method"].startswith("one full run on 10 images")
    extrapolated = measure_sampling_time(ddpm, batch=10, probe_steps=2, max_seconds=0.0, sampler="ddim", steps=10)
    assert extrapolated["calls"] == 10 and "2 U-Net calls on 10 images timed, x 10 calls" in extrapolated["method"]
    assert extrapolated["seconds_per_1k"] == pytest.approx(extrapolated["seconds_per_call"] * 10 * 100)


def _fake_entry(arch, kind, metrics, **extra):
    return {"arch": arch, "kind": kind, "dataset": "mnist", "train_seconds": 100.0, "device": "NVIDIA H100 80GB HBM3",
            "metrics": metrics, **extra}


def _m(fid, n=10_000, **extra):
    return {"fid": fid, "kid_mean": 0.01, "kid_std": 0.001, "precision": 0.7, "recall": 0.6, "coverage": 1.0,
            "eval_n": n, "eval_seed": 0, **extra}


def test_comparison_table_from_a_manifest():
    from imagegen_lib.generators.compare import comparison_table, published_table

    manifest = {"checkpoints": {
        "ddpm_mnist": _fake_entry("ddpm", "ddpm", {**_m(1.5), "samplers": {
            "ancestral1000": _m(1.5, sample_seconds_per_1k=30.0, sample_device="NVIDIA H100 80GB HBM3"),
            "ddim50": _m(2.5), "ddim10_n200": _m(9.0, n=200)},
            "sampling_time": {"cpu": {"ddim50": {"seconds_per_1k": 120.0, "method": "x"}}}}),
        "dcgan_mnist": _fake_entry("dcgan", "gan-generator",
                                   _m(2.0, sampling_time={"cpu": {"default": {"seconds_per_1k": 0.5}}})),
        "vae_mnist": _fake_entry("vae", "vae", _m(20.0)),
        "classifier_mnist": {"kind": "classifier", "dataset": "mnist"},
        "dcgan_fashion": {**_fake_entry("dcgan", "gan-generator", _m(3.0)), "dataset": "fashion-mnist"},
        "q6_x0_mnist": {**_fake_entry("ddpm", "ddpm", _m(3.2)), "study": "q6"},  # a study's variant: left out
    }, "floors": {"mnist": _m(0.2)}}
    table = comparison_table(dataset="mnist", manifest=manifest, live_params=False)
    assert [(r["model"], r["sampler"]) for r in table.rows] == [
        ("real data (floor)", None), ("DCGAN", None), ("VAE", None), ("DDPM", "ancestral1000"), ("DDPM", "ddim50")]
    ddpm = table.rows[3]
    assert ddpm["gpu_per_1k"] == 30.0 and ddpm["cpu_per_1k"] is None and table.rows[4]["cpu_per_1k"] == 120.0
    assert table.rows[1]["cpu_per_1k"] == 0.5 and table.rows[1]["classes_drawn"] == 10
    md = table.to_markdown()
    assert "| DCGAN | — | 2.00 |" in md and "| DDPM | DDIM, 50 steps | 2.50 |" in md
    assert "6.8 ± 0.5 (NS GAN)" in md and "16.6 ± 0.4 (VAE (cross-entropy))" in md
    assert "n = 10000 samples, seed 0" in md and "not comparable" in md
    assert table.to_html().startswith("<table>") and "DDIM, 50 steps" in table._repr_html_()
    with pytest.raises(ValueError, match="different feature spaces"):
        comparison_table(["dcgan_fashion"], dataset="mnist", manifest=manifest, live_params=False)
    with pytest.raises(KeyError, match="not in the manifest"):
        comparison_table(["stylegan"], manifest=manifest, live_params=False)
    published = published_table("mnist").to_markdown()
    assert "| NS GAN | 6.8 ± 0.5 |" in published and "| 2-Stage VAE | 12.6 ± 1.5 |" in published


def test_comparison_table_counts_parameters_from_the_checkpoints(runs, tmp_path):
    from imagegen_lib.generators.compare import comparison_table
    from imagegen_lib.core.manifest import read_manifest, ship, update_metrics

    for model in TINY_MODEL:
        ship(runs / model / EXPORT[model], f"{model}_mnist", directory=tmp_path)
        update_metrics(f"{model}_mnist", _m(5.0) if model != "ddpm" else {"samplers": {"ddim5": _m(7.0)}},
                       directory=tmp_path)
    table = comparison_table(dataset="mnist", manifest=read_manifest(tmp_path), checkpoint_dir=tmp_path)
    params = {r["model"]: r["params"] for r in table.rows}
    assert params["DDPM"] == sum(p.numel() for p in load_sampler(runs / "ddpm" / "model").unet.parameters())
    G = load_sampler(runs / "cgan" / "generator").G
    assert params["conditional DCGAN"] == sum(p.numel() for p in G.parameters())
    assert all(v > 0 for v in params.values())


def test_time_sampling_reads_the_keys_sampler_key_writes(runs):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "time_sampling", Path(__file__).resolve().parents[1] / "scripts" / "time_sampling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flow = load_sampler(runs / "flow" / "model")
    for key in ("heun3_w2", "dpmpp2m20", "euler5_w1.5"):
        assert flow.sampler_key(**module.parse_sampler_key(key)) == key
    assert module.parse_sampler_key("ancestral1000") == {"sampler": "ancestral", "steps": 1000}
    with pytest.raises(SystemExit, match="not a sampler key"):
        module.parse_sampler_key("ddim")


def test_network_calls_count_the_steps_a_karras_grid_keeps(runs):
    ddpm = load_sampler(runs / "ddpm" / "model")  # T = 20: Karras targets round onto fewer integer steps
    from imagegen_lib.diffusion.samplers import karras_timesteps

    kept = len(karras_timesteps(ddpm.schedule, 15))
    assert kept < 15 and ddpm.network_calls(sampler="euler", steps=15) == kept
    assert ddpm.network_calls(sampler="heun", steps=15) == 2 * kept - 1
    assert ddpm.network_calls(sampler="ddim", steps=15) == 15
