"""The GAN training loop: one step, learning, the files a run writes, and exact resume."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from imagegen_lib.core.training import ema_update
from imagegen_lib.gan import train as gan_train
from imagegen_lib.gan.losses import d_loss_bce, g_loss_nonsaturating, r1_penalty
from imagegen_lib.gan.models import MLPDiscriminator, MLPGenerator, build_gan
from imagegen_lib.gan.step import gan_train_step, r1_step
from imagegen_lib.gan.train import GANConfig, load_generator, sample_images, train_gan

from conftest import make_tiny_config

HISTORY_KEYS = {"loss_d", "loss_g", "d_real", "d_fake", "step", "epoch", "seconds"}


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}  # weights *and* batch-norm buffers


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == [], f"tensors differ: {different}"


def _losses(history):
    return [(r["step"], r["loss_d"], r["loss_g"], r["d_real"], r["d_fake"]) for r in history]


# ---------------------------------------------------------------------------------------------
# One step
# ---------------------------------------------------------------------------------------------

def test_train_step_matches_the_textbook_update(mnist_tiny):
    """D step on real + detached fakes, then a G step through the *updated* D (same fakes)."""
    torch.manual_seed(0)
    G, D = build_gan("dcgan", z_dim=16, width=8)
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.5, 0.999)) for m in (G, D, G2, D2)]
    real, z = mnist_tiny[0][:16], torch.randn(16, 16)

    stats = gan_train_step(G, D, opts[0], opts[1], real, z, g_loss_nonsaturating)

    fake = G2(z)
    real_logits, fake_logits = D2(real), D2(fake.detach())
    loss_d = d_loss_bce(real_logits, fake_logits)
    opts[3].zero_grad()
    loss_d.backward()
    opts[3].step()
    loss_g = g_loss_nonsaturating(D2(fake))
    opts[2].zero_grad()
    loss_g.backward()
    opts[2].step()

    for a, b in ((G, G2), (D, D2)):
        for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.allclose(p.float(), q.float(), atol=1e-6), name
    assert stats["loss_d"].item() == pytest.approx(loss_d.item(), abs=1e-6)
    assert stats["loss_g"].item() == pytest.approx(loss_g.item(), abs=1e-6)
    assert stats["d_real"].item() == pytest.approx(torch.sigmoid(real_logits).mean().item(), abs=1e-6)
    assert stats["d_fake"].item() == pytest.approx(torch.sigmoid(fake_logits).mean().item(), abs=1e-6)
    assert not any(v.requires_grad for v in stats.values())


def test_discriminator_learns_against_a_fixed_generator(mnist_tiny):
    torch.manual_seed(0)
    G, D = build_gan("dcgan", z_dim=16, width=8)
    g_before = _state(G)
    opt_g = torch.optim.SGD(G.parameters(), lr=0.0)  # G frozen: its fakes stay the same
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real, z = mnist_tiny[0][:32], torch.randn(32, 16)
    history = [gan_train_step(G, D, opt_g, opt_d, real, z, g_loss_nonsaturating) for _ in range(20)]
    loss_d = [h["loss_d"].item() for h in history]
    assert loss_d[0] == pytest.approx(2 * np.log(2), abs=0.3)  # an untrained D says 1/2 to everything
    assert loss_d[-1] < 0.5 * loss_d[0]
    assert sum(b < a for a, b in zip(loss_d, loss_d[1:])) >= 17  # (almost) monotone descent
    assert history[-1]["d_real"] > 0.7 and history[-1]["d_fake"] < 0.3
    g_after = {k: v for k, v in G.state_dict().items() if "running" not in k and "num_batches" not in k}
    _assert_same_state({k: g_before[k] for k in g_after}, g_after)


def test_generator_learns_against_a_fixed_discriminator():
    torch.manual_seed(0)
    G, D = MLPGenerator(z_dim=16, hidden=(64,)), MLPDiscriminator(hidden=(64,))
    d_before = _state(D)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.SGD(D.parameters(), lr=0.0)
    real, z = torch.rand(32, 1, 28, 28) * 2 - 1, torch.randn(32, 16)
    loss_g = [gan_train_step(G, D, opt_g, opt_d, real, z, g_loss_nonsaturating)["loss_g"].item()
              for _ in range(20)]
    assert loss_g[-1] < loss_g[0] - 0.05
    assert sum(b < a for a, b in zip(loss_g, loss_g[1:])) >= 17
    _assert_same_state(d_before, D.state_dict())  # G's loss sent gradients into D, but D did not move


# ---------------------------------------------------------------------------------------------
# A whole run
# ---------------------------------------------------------------------------------------------

def _config(**kw) -> GANConfig:
    # 128 images / batch 32 = 4 steps per epoch, 2 epochs = 8 steps
    return make_tiny_config(**{"epochs": 2, "seed": 3, "sample_every": 4, **kw})


def _train(images, out=None, **kw):
    config_kw = {k: kw.pop(k) for k in list(kw) if k in GANConfig.__dataclass_fields__}
    return train_gan(_config(**config_kw), images=images, out_dir=out, device="cpu", progress=False, **kw)


@pytest.fixture(scope="module")
def images128():
    from imagegen_lib.core import data

    return data.load_images("mnist", "train", (-1, 1), limit=128)[0]


@pytest.fixture(scope="module")
def straight_run(images128, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    result = _train(images128, out)
    return out, result


def test_run_writes_its_files(straight_run):
    out, result = straight_run
    assert result.steps == 8
    for name in ("last.safetensors", "last.json", "generator.safetensors", "generator.json"):
        assert (out / name).is_file(), name
    pngs = sorted(p.name for p in (out / "samples").iterdir())
    assert pngs == ["step_0000004.png", "step_0000008.png"]
    with Image.open(out / "samples" / "step_0000008.png") as img:
        assert img.size == (2 * (8 * 30 + 2), 2 * (8 * 30 + 2))  # 8x8 grid, 2 px padding, 2x upscale
    assert [s for s, _ in result.samples] == [4, 8]
    assert result.samples[-1][1].shape == (64, 1, 28, 28)
    assert not list(out.glob(".*.tmp")) and not (out / ".write_test").exists()

    last = json.loads((out / "last.json").read_text())
    assert last["kind"] == "gan-train-state" and last["step"] == 8 and last["config"]["seed"] == 3
    gen_meta = json.loads((out / "generator.json").read_text())
    assert gen_meta["kind"] == "gan-generator" and gen_meta["step"] == 8
    assert (gen_meta["arch"], gen_meta["z_dim"], gen_meta["width"]) == ("dcgan", 16, 8)


def test_history_rows(straight_run):
    _, result = straight_run
    history = result.history
    assert [r["step"] for r in history] == list(range(1, 9))
    for r in history:
        assert set(r) == HISTORY_KEYS
        assert all(np.isfinite(r[k]) for k in HISTORY_KEYS)
        assert 0 <= r["d_real"] <= 1 and 0 <= r["d_fake"] <= 1 and r["loss_d"] > 0 and r["loss_g"] > 0
    assert [r["epoch"] for r in history] == [s / 4 for s in range(1, 9)]


def test_history_averages_over_log_every(images128):
    every_step = _train(images128, epochs=1, sample_every=1000).history
    every_three = _train(images128, epochs=1, sample_every=1000, log_every=3).history
    assert [r["step"] for r in every_three] == [3, 4]  # and the ragged remainder at the end
    for key in ("loss_d", "loss_g", "d_real", "d_fake"):
        assert every_three[0][key] == pytest.approx(np.mean([r[key] for r in every_step[:3]]), rel=1e-5)
        assert every_three[1][key] == pytest.approx(every_step[3][key], rel=1e-5)


def test_generator_export_loads_and_samples(straight_run):
    out, result = straight_run
    G, meta = load_generator(out / "generator.safetensors")
    assert not G.training and meta["step"] == 8
    _assert_same_state(_state(result.G), G.state_dict())
    a, b = sample_images(G, 10, seed=1), sample_images(G, 10, seed=1)
    assert a.shape == (10, 1, 28, 28) and torch.equal(a, b)
    assert float(a.abs().max()) <= 1.0
    assert not torch.equal(a, sample_images(G, 10, seed=2))
    # batching doesn't change the noise (only float rounding of the batched convolutions)
    assert torch.allclose(sample_images(G, 10, seed=1, batch_size=3), a, atol=1e-5)


def test_saving_does_not_change_the_run(images128, straight_run):
    _, with_files = straight_run
    without = _train(images128)
    _assert_same_state(_state(with_files.G), _state(without.G))
    assert _losses(with_files.history) == _losses(without.history)


def test_saturating_loss_is_used(images128):
    h = _train(images128, epochs=1, g_loss="saturating").history
    assert all(r["loss_g"] < 0 for r in h)  # log(1 - D(G(z))) < 0, unlike -log D(G(z)) > 0


# ---------------------------------------------------------------------------------------------
# Resume
# ---------------------------------------------------------------------------------------------

def test_resume_is_exact(images128, straight_run, tmp_path):
    _, straight = straight_run
    first = _train(images128, tmp_path, max_steps=3)  # stops mid-epoch
    assert first.steps == 3
    assert json.loads((tmp_path / "last.json").read_text())["step"] == 3
    resumed = _train(images128, tmp_path, resume=True)
    assert resumed.steps == 8
    _assert_same_state(_state(straight.G), _state(resumed.G))
    _assert_same_state(_state(straight.D), _state(resumed.D))
    assert _losses(resumed.history) == _losses(straight.history)
    G, _ = load_generator(tmp_path / "generator")
    _assert_same_state(_state(straight.G), G.state_dict())


def test_keyboard_interrupt_leaves_a_resumable_checkpoint(images128, straight_run, tmp_path):
    _, straight = straight_run

    def interrupt_at_5(row):
        if row["step"] == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(images128, tmp_path, on_log=interrupt_at_5)
    last = json.loads((tmp_path / "last.json").read_text())
    assert last["step"] == 5 and len(last["history"]) == 5
    assert json.loads((tmp_path / "generator.json").read_text())["step"] == 5
    resumed = _train(images128, tmp_path, resume=True)
    assert resumed.steps == 8
    _assert_same_state(_state(straight.G), _state(resumed.G))
    _assert_same_state(_state(straight.D), _state(resumed.D))
    assert _losses(resumed.history) == _losses(straight.history)


def test_resume_with_more_epochs_continues(images128, straight_run, tmp_path):
    out, _ = straight_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    same = _train(images128, run, resume=True)  # already finished: nothing to do
    assert same.steps == 8
    longer = _train(images128, run, resume=True, epochs=3)
    assert longer.steps == 12 and [r["step"] for r in longer.history] == list(range(1, 13))
    assert json.loads((run / "last.json").read_text())["step"] == 12
    reference = _train(images128, epochs=3)
    _assert_same_state(_state(reference.G), _state(longer.G))


def test_resume_with_changed_settings_is_refused(images128, straight_run, tmp_path):
    out, _ = straight_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    with pytest.raises(ValueError, match=r"lr=0\.001 \(run has 0\.0002\).*Only --epochs"):
        _train(images128, run, resume=True, lr=1e-3)
    with pytest.raises(ValueError, match="width=16"):
        _train(images128, run, resume=True, width=16)
    assert json.loads((run / "last.json").read_text())["step"] == 8  # untouched


def test_existing_run_is_not_overwritten(images128, straight_run, tmp_path):
    out, _ = straight_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    before = (run / "last.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        _train(images128, run)
    assert (run / "last.safetensors").read_bytes() == before


def test_resume_needs_a_checkpoint(images128, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        _train(images128, tmp_path / "empty", resume=True)
    with pytest.raises(ValueError, match="out_dir"):
        _train(images128, None, resume=True)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    (lambda x: x[:, 0], r"\(N, 1, 28, 28\).*\(128, 28, 28\)"),
    (lambda x: x.repeat(1, 3, 1, 1), r"\(128, 3, 28, 28\)"),
    (lambda x: x.numpy(), "ndarray"),
    (lambda x: (x + 1) / 2, r"\[0, 1\].*x \* 2 - 1"),
    (lambda x: (x + 1) * 127.5, r"\[-1, 1\].*uint8"),
    (lambda x: ((x + 1) * 127.5).round().to(torch.uint8), r"\[-1, 1\].*got \[0, 255\]"),
    (lambda x: x[:20], "only 20 training images for batch_size 32"),
])
def test_bad_images_are_rejected(images128, make, match):
    with pytest.raises(ValueError, match=match):
        _train(make(images128))


@pytest.mark.parametrize("kw, match", [
    (dict(epochs=0), "epochs must be >= 1"),
    (dict(batch_size=0), "batch_size"),
    (dict(lr=0.0), "lr must be > 0"),
    (dict(g_loss="wgan"), "unknown generator loss"),
    (dict(arch="vae"), "unknown GAN architecture"),
    (dict(ema=1.0), r"ema \(a decay\) must be in \[0, 1\), got 1.0"),
    (dict(ema=-0.1), r"ema \(a decay\) must be in \[0, 1\)"),
    (dict(r1=-1.0), r"r1 \(the penalty weight gamma\) must be >= 0, got -1.0"),
    (dict(r1_every=0), "r1_every must be >= 1, got 0"),
])
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        GANConfig(**kw)


def test_config_from_dict_ignores_unknown_keys():
    c = GANConfig.from_dict({"arch": "mlpgan", "epochs": 3, "something_new": 1})
    assert c.arch == "mlpgan" and c.epochs == 3


def test_interrupt_inside_a_step_still_resumes_exactly(images128, straight_run, tmp_path, monkeypatch):
    """Ctrl-C lands where the time goes: inside gan_train_step, after D (or G) already moved.
    The checkpoint written on the way out must not mix step k's weights with step k-1's counters."""
    import imagegen_lib.gan.stepper as stepper_mod  # EagerStep calls gan_train_step from there

    _, straight = straight_run
    real_step, calls = stepper_mod.gan_train_step, []

    def step_then_interrupt(*args, **kwargs):
        stats = real_step(*args, **kwargs)
        calls.append(1)
        if len(calls) == 6:  # the 6th update happened, but the loop never counted it
            raise KeyboardInterrupt
        return stats

    monkeypatch.setattr(stepper_mod, "gan_train_step", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _train(images128, tmp_path)
    monkeypatch.setattr(stepper_mod, "gan_train_step", real_step)
    resumed = _train(images128, tmp_path, resume=True)
    assert resumed.steps == 8
    _assert_same_state(_state(straight.G), _state(resumed.G))
    _assert_same_state(_state(straight.D), _state(resumed.D))
    assert _losses(resumed.history) == _losses(straight.history)


def test_history_after_resume_averages_only_the_steps_it_holds(images128, tmp_path):
    """Resuming from a step that is not a multiple of log_every (an epoch-end checkpoint, a
    max_steps stop) must not divide the first new reading by a full log_every."""
    every_step = _train(images128).history  # log_every=1: the per-step values
    _train(images128, tmp_path, log_every=3, max_steps=4)
    resumed = _train(images128, tmp_path, log_every=3, resume=True).history
    assert [r["step"] for r in resumed] == [3, 4, 6, 8]
    per_step = {r["step"]: r for r in every_step}
    for row, steps in zip(resumed, ([1, 2, 3], [4], [5, 6], [7, 8])):
        for key in ("loss_d", "loss_g", "d_real", "d_fake"):
            assert row[key] == pytest.approx(np.mean([per_step[s][key] for s in steps]), rel=1e-5), (row["step"], key)


# ---------------------------------------------------------------------------------------------
# EMA of G's weights and the (lazy) R1 penalty
# ---------------------------------------------------------------------------------------------

STABLE = dict(ema=0.9, r1=1.0, r1_every=3)  # 8 steps: R1 on steps 0, 3, 6 (weighted 3·γ)


@pytest.fixture(scope="module")
def stable_run(images128, tmp_path_factory):
    out = tmp_path_factory.mktemp("stable")
    return out, _train(images128, out, **STABLE)


def test_r1_step_is_an_adam_step_on_the_penalty_alone():
    """Lazy R1's D step: D moves along γ/2·E||∇_x D(x_real)||² and nothing else; G is not touched."""
    torch.manual_seed(0)
    D = MLPDiscriminator(hidden=(32,))
    D2 = copy.deepcopy(D)
    opt, opt2 = (torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.5, 0.999)) for m in (D, D2))
    real = torch.rand(8, 1, 28, 28) * 2 - 1

    penalty = r1_step(D, opt, real, gamma=5.0)

    expected = r1_penalty(D2, real, gamma=5.0)
    opt2.zero_grad()
    expected.backward()
    for p in D2.parameters():  # ∇_x D doesn't depend on D's last bias: its gradient is 0 (and Adam's state moves)
        p.grad = torch.zeros_like(p) if p.grad is None else p.grad
    opt2.step()
    _assert_same_state(_state(D2), _state(D))
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-6) and penalty.item() > 0
    assert not penalty.requires_grad and not real.requires_grad  # the caller's batch is left alone


def test_r1_is_lazy_on_the_runs_own_steps(stable_run):
    """R1's D step follows the updates of steps 0, k, 2k (history rows 1, k+1, …); 0 is logged in between."""
    _, result = stable_run
    r1 = [r["r1"] for r in result.history]
    assert [i for i, v in enumerate(r1) if v > 0] == [0, 3, 6]
    assert all(v == 0 for i, v in enumerate(r1) if i not in (0, 3, 6))


def test_ema_follows_every_g_step(images128, monkeypatch):
    """G_ema = the EMA (with warm-up) of G's weights after each of the run's steps; buffers: G's."""
    seen = []

    def recording(ema_params, params, step, decay):
        seen.append((step, decay, [p.detach().clone() for p in params]))
        ema_update(ema_params, params, step, decay)

    monkeypatch.setattr(gan_train, "ema_update", recording)
    result = _train(images128, ema=0.9)
    assert [(s, d) for s, d, _ in seen] == [(s, 0.9) for s in range(8)]
    torch.manual_seed(3)  # the run's seed: the initial G, which the EMA starts from
    G0, _ = build_gan("dcgan", z_dim=16, width=8)
    expected = [p.detach().clone() for p in G0.parameters()]
    for step, decay, params in seen:
        ema_update(expected, params, step, decay)
    assert all(torch.equal(a, b) for a, b in zip(expected, result.G_ema.parameters()))
    assert torch.equal(seen[-1][2][0], next(result.G.parameters()))  # the weights *after* each update
    assert not torch.equal(expected[0], seen[-1][2][0])
    for (name, b_ema), b in zip(result.G_ema.named_buffers(), result.G.buffers()):
        assert torch.equal(b_ema, b), name


def test_ema_and_r1_leave_the_raw_run_alone_without_them(images128, straight_run):
    """Off by default: the same run as before the options existed (same weights, same history keys)."""
    _, straight = straight_run
    assert straight.G_ema is None and "r1" not in straight.history[0]
    with_ema = _train(images128, ema=0.999)  # the EMA only watches: G and D train as without it
    _assert_same_state(_state(straight.G), _state(with_ema.G))
    _assert_same_state(_state(straight.D), _state(with_ema.D))


def test_stable_run_exports_both_generators(stable_run):
    out, result = stable_run
    raw, raw_meta = load_generator(out / "generator.safetensors")
    ema, ema_meta = load_generator(out / "generator_ema.safetensors")
    _assert_same_state(_state(result.G), raw.state_dict())
    _assert_same_state(_state(result.G_ema), ema.state_dict())
    assert raw_meta["weights"] == "raw" and "ema_decay" not in raw_meta
    assert (ema_meta["weights"], ema_meta["ema_decay"], ema_meta["step"]) == ("ema", 0.9, 8)
    assert {k: ema_meta["config"][k] for k in STABLE} == STABLE  # in the run's settings too
    assert not torch.equal(sample_images(raw, 4), sample_images(ema, 4))


def test_stable_run_resumes_exactly(images128, stable_run, tmp_path):
    """Stopped at step 4 (between R1 steps 3 and 6) and resumed: G, D, the EMA, the history — bit for bit."""
    _, straight = stable_run
    _train(images128, tmp_path, max_steps=4, **STABLE)
    resumed = _train(images128, tmp_path, resume=True, **STABLE)
    assert resumed.steps == 8
    for a, b in ((straight.G, resumed.G), (straight.D, resumed.D), (straight.G_ema, resumed.G_ema)):
        _assert_same_state(_state(a), _state(b))
    assert [r["r1"] for r in resumed.history] == [r["r1"] for r in straight.history]
    assert _losses(resumed.history) == _losses(straight.history)
    G_ema, _ = load_generator(tmp_path / "generator_ema")
    _assert_same_state(_state(straight.G_ema), G_ema.state_dict())
    with pytest.raises(ValueError, match=r"ema=0\.5 \(run has 0\.9\)"):
        _train(images128, tmp_path, resume=True, **{**STABLE, "ema": 0.5})


def test_r1_on_cuda_says_it_trains_with_the_plain_step(images128, monkeypatch, capsys):
    """Where the fast step would be the default (stood in for by a CPU here), R1 picks the plain step
    and says so in one line; without R1 nothing is said."""
    from imagegen_lib.gan import stepper

    monkeypatch.setattr(gan_train, "fast_path_reason",
                        lambda device, ddp, r1=False: stepper.fast_path_reason(torch.device("cuda"), ddp, r1))
    _train(images128, epochs=1, max_steps=1, r1=1.0)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["--r1: training with the plain (eager) step: R1 (--r1) needs a double backward through D "
                   "every few steps, which the CUDA-graph step does not capture"]
    _train(images128, epochs=1, max_steps=1, ema=0.9)
    assert capsys.readouterr().err == ""
