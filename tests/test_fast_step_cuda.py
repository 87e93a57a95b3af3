"""The fast path on a real GPU: the CUDA graph, the second stream and fused Adam change no result.

CI has no GPU, so these skip there; they run on the device machine
(``python -m pytest tests/test_fast_step_cuda.py``, see ``scripts/gpu_bench.sh``) and its result is
recorded with the benchmark. tests/test_fast_step.py checks the same step functions eagerly on a CPU.
"""

from __future__ import annotations

import copy

import pytest
import torch

from imagegen_lib.gan.fast_step import SHIPPED_OPTIONS, STAT_KEYS, FastGANStep, adam_options
from imagegen_lib.gan.losses import g_loss_nonsaturating
from imagegen_lib.gan.models import build_gan
from imagegen_lib.gan.step import gan_train_step

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

STEPS = 20


@pytest.fixture(scope="module")
def images():
    from imagegen_lib.core import data

    return data.load_images("mnist", "train", (-1, 1), limit=4096)[0].cuda()


@pytest.fixture(autouse=True)
def deterministic_cudnn():
    """Same cuDNN algorithms on both sides of a comparison (benchmark mode could pick others)."""
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def _models(fused: bool):
    torch.manual_seed(0)
    G, D = build_gan("dcgan", z_dim=100, width=64)
    G, D = G.cuda(), D.cuda()
    kw = adam_options(torch.device("cuda"), fast=True) if fused else {}
    adam = lambda m: torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999), **kw)  # noqa: E731
    return G, D, adam(G), adam(D)


def _stepper(images, bf16, changes, use_graph):
    """The shipped levers with ``changes`` (and cuDNN's benchmark mode off: see deterministic_cudnn)."""
    G, D, og, od = _models(fused=True)
    options = SHIPPED_OPTIONS.replace(cudnn_benchmark=False, use_graph=use_graph, **changes)
    stepper = FastGANStep(G, D, og, od, images, 128, 100, g_loss_nonsaturating, bf16=bf16, options=options)
    stepper.begin_epoch(torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(5)))
    stepper.run(STEPS, torch.Generator().manual_seed(9))
    return stepper


def _max_rel_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max(float((sa[k].float() - sb[k].float()).abs().max() / sa[k].float().abs().max().clamp_min(1e-12))
               for k in sa if sa[k].is_floating_point())


NO_COMPILE = {"compile_mode": None}


@pytest.mark.parametrize("bf16, changes", [(False, {"channels_last": False, **NO_COMPILE}),
                                           (False, {"channels_last": True, **NO_COMPILE}),
                                           (True, {"channels_last": True, **NO_COMPILE}),
                                           (True, {})],
                         ids=["fp32", "fp32-channels-last", "bf16-channels-last", "shipped-bf16-compiled-D"])
def test_graph_replays_what_the_eager_steps_compute(images, bf16, changes):
    """The captured graph (two streams, fused capturable Adam, compiled D) against the very same
    steps run eagerly: every weight, batch-norm statistic and summed loss identical."""
    eager = _stepper(images, bf16, changes, use_graph=False)
    graph = _stepper(images, bf16, changes, use_graph=True)
    assert graph.graphs is not None, "capture fell back to eager"
    for a, b in ((eager.G, graph.G), (eager.D, graph.D)):
        different = [k for k, v in a.state_dict().items() if not torch.equal(v, b.state_dict()[k])]
        assert different == []
    assert torch.equal(eager.sums, graph.sums)


def test_fast_path_equals_the_plain_loop(images):
    """The fast path (fp32, NCHW, D not compiled, G's first layer a convolution, same fused Adam)
    against the library's plain step:
    the same weights and statistics bit for bit — resident batch, frozen D, side streams and graph
    change no arithmetic. (bf16 rounds, and channels_last, the compiled D and the matmul run other kernels, whose
    last bits differ: their check is the FID comparison in scripts/gpu_bench.sh. Against the ordinary
    for-each Adam, too, the weights differ by rounding, which Adam's normalised steps amplify for
    near-zero gradients.)"""
    fast = _stepper(images, False, {"channels_last": False, "projection_as_matmul": False, **NO_COMPILE},
                    use_graph=True)
    G, D, og, od = _models(fused=True)
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(5)).cuda()
    noise = torch.Generator().manual_seed(9)
    sums = torch.zeros(len(STAT_KEYS), device="cuda")
    for i in range(STEPS):
        z = torch.randn(128, 100, generator=noise).cuda()
        stats = gan_train_step(G, D, og, od, images[order[128 * i:128 * (i + 1)]], z, g_loss_nonsaturating)
        sums += torch.stack([stats[k] for k in STAT_KEYS])
    for a, b in ((G, fast.G), (D, fast.D)):
        different = [k for k, v in a.state_dict().items() if not torch.equal(v, b.state_dict()[k])]
        assert different == [], f"differ: {different}; max relative difference {_max_rel_diff(a, b):.2e}"
    torch.testing.assert_close(fast.sums, sums, rtol=1e-5, atol=1e-6)  # summed in another order


def test_capture_leaves_the_starting_state_untouched(images):
    """Capture runs warm-up steps; afterwards the models and Adam are as they were given."""
    G, D, og, od = _models(fused=True)
    before = copy.deepcopy((G.state_dict(), D.state_dict()))
    stepper = FastGANStep(G, D, og, od, images, 128, 100, g_loss_nonsaturating, options=SHIPPED_OPTIONS)
    stepper._capture()
    assert stepper.graphs is not None
    for module, state in zip((G, D), before):
        for k, v in module.state_dict().items():
            assert torch.equal(v, state[k]), k
    for opt in (og, od):
        for st in opt.state.values():
            assert all(float(v.abs().sum()) == 0 for v in st.values() if torch.is_tensor(v))


def test_train_gan_on_the_gpu_uses_every_lever_and_resumes(tmp_path):
    """train_gan's default on a GPU: bf16 resolved on, the graph captured with the compiled D (no
    fallback warning), statistics logged, and --resume continuing the run."""
    import warnings

    from imagegen_lib.gan.train import GANConfig, train_gan

    config = GANConfig(epochs=1, limit=2048, log_every=4, sample_every=1000, ckpt_every=8, seed=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = train_gan(config, out_dir=tmp_path / "run", device="cuda", progress=False, max_steps=8)
    assert [str(w.message) for w in caught if "capture failed" in str(w.message)] == []
    assert first.config.bf16 is True and first.steps == 8
    assert all(0 < row["d_real"] < 1 for row in first.history)
    resumed = train_gan(config, out_dir=tmp_path / "run", device="cuda", progress=False, resume=True)
    assert resumed.steps == 2048 // 128
    assert [r["step"] for r in resumed.history] == [4, 8, 12, 16]
