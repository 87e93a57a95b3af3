"""The fast GPU path (imagegen_lib.gan.fast_step) computes what the plain loop computes.

CI has no GPU, so these run the fast path's own step functions *eagerly* on the CPU: the batch
gathered by index_select at a device-side cursor, the noise drawn into a buffer, D frozen in the G
step, statistics summed in a tensor, several steps per call, and the warm-up that capture needs
undone. Only the graph capture itself (and fused, capturable Adam) is left for the GPU run of
benchmarks/train_speed.py.
"""

from __future__ import annotations

import copy

import pytest
import torch

from imagegen_lib.core.checkpoint import load_optimizer, optimizer_tensors
from imagegen_lib.gan.fast_layers import ProjectionAsMatmul, projection_as_matmul
from imagegen_lib.gan.fast_step import (SHIPPED_OPTIONS, STAT_KEYS, FastGANStep, FastStepOptions, _restore,
                                        _snapshot, gan_train_step_frozen_d)
from imagegen_lib.gan.losses import g_loss_nonsaturating
from imagegen_lib.gan.models import build_gan
from imagegen_lib.gan.stepper import EagerStep, fast_path_reason, make_step, use_fast_step
from imagegen_lib.gan.step import gan_train_step
from imagegen_lib.gan.train import _build, _steps_to_next_event, train_gan

from conftest import make_tiny_config


def _assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    """Bit for bit: on a CPU the fast path's arithmetic is the plain loop's, operation for operation."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert different == [], f"tensors differ: {different}"


def _cpu_options(**changes) -> FastStepOptions:
    """What train_gan gives the fast step on a CPU (the levers that change no arithmetic), changed."""
    return SHIPPED_OPTIONS.for_device(torch.device("cpu")).replace(**changes)


def _pair(arch="dcgan", seed=0):
    torch.manual_seed(seed)
    G, D = build_gan(arch, z_dim=16, width=8)
    opt = lambda m: torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.5, 0.999))  # noqa: E731
    return G, D, opt(G), opt(D)


@pytest.mark.parametrize("arch", ["dcgan", "mlpgan"])
def test_frozen_d_step_equals_the_library_step(mnist_tiny, arch):
    """Skipping D's weight gradients in the G step changes no weight and no statistic."""
    G1, D1, og1, od1 = _pair(arch)
    G2, D2, og2, od2 = copy.deepcopy(G1), copy.deepcopy(D1), *(None, None)
    og2 = torch.optim.Adam(G2.parameters(), lr=1e-3, betas=(0.5, 0.999))
    od2 = torch.optim.Adam(D2.parameters(), lr=1e-3, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(1)
    for s in range(3):
        real, z = mnist_tiny[0][32 * s:32 * (s + 1)], torch.randn(32, 16, generator=gen)
        a = gan_train_step(G1, D1, og1, od1, real, z, g_loss_nonsaturating)
        b = gan_train_step_frozen_d(G2, D2, og2, od2, real, z, g_loss_nonsaturating)
        for k in STAT_KEYS:
            assert torch.equal(a[k], b[k]), k
    _assert_same(G1, G2)
    _assert_same(D1, D2)
    assert all(p.requires_grad for p in D2.parameters())  # D is unfrozen again afterwards


def test_frozen_d_step_computes_no_d_gradients_in_the_g_step(mnist_tiny):
    G, D, og, od = _pair()
    gan_train_step_frozen_d(G, D, og, od, mnist_tiny[0][:32], torch.randn(32, 16), g_loss_nonsaturating)
    d_grads = [p.grad for p in D.parameters()]
    G2, D2, og2, od2 = _pair()
    gan_train_step(G2, D2, og2, od2, mnist_tiny[0][:32], torch.randn(32, 16), g_loss_nonsaturating)
    # The plain step leaves G-step gradients (D step + G step summed) in D; the frozen one only D's own.
    assert all(g is not None for g in d_grads)
    assert any(not torch.allclose(a, b.grad) for a, b in zip(d_grads, D2.parameters()))


@pytest.mark.parametrize("steps_per_graph", [1, 3])
def test_stepper_equals_plain_steps(mnist_tiny, steps_per_graph):
    """FastGANStep run eagerly, K steps a call: the batch via index_select at the cursor, noise from
    the same generator, statistics summed on the device — same weights as the plain loop."""
    images = mnist_tiny[0][:128]
    order = torch.randperm(128, generator=torch.Generator().manual_seed(5))
    G1, D1, og1, od1 = _pair()
    G2, D2, og2, od2 = copy.deepcopy(G1), copy.deepcopy(D1), None, None
    og2 = torch.optim.Adam(G2.parameters(), lr=1e-3, betas=(0.5, 0.999))
    od2 = torch.optim.Adam(D2.parameters(), lr=1e-3, betas=(0.5, 0.999))

    noise = torch.Generator().manual_seed(9)
    sums = dict.fromkeys(STAT_KEYS, 0.0)
    for i in range(1, 4):  # steps 1..3 of the epoch (the stepper starts at offset 1)
        real = images[order[32 * i:32 * (i + 1)]]
        stats = gan_train_step(G1, D1, og1, od1, real, torch.randn(32, 16, generator=noise), g_loss_nonsaturating)
        sums = {k: sums[k] + stats[k] for k in STAT_KEYS}

    stepper = FastGANStep(G2, D2, og2, od2, images, 32, 16, g_loss_nonsaturating,
                          options=_cpu_options(steps_per_graph=steps_per_graph))
    assert not stepper.use_graph  # CPU: the same steps, eagerly
    stepper.begin_epoch(order, offset=1)
    stepper.run(3, torch.Generator().manual_seed(9))
    got = stepper.take_sums()
    _assert_same(G1, G2)
    _assert_same(D1, D2)
    for k in STAT_KEYS:
        assert torch.equal(got[k], sums[k]), k
    assert float(stepper.take_sums()["loss_d"]) == 0.0  # take_sums resets
    assert int(stepper.cursor) == 4


def test_warm_up_is_undone_exactly(mnist_tiny):
    """Graph capture needs eager warm-up steps; _snapshot/_restore must make them leave no trace,
    including the Adam state the warm-up creates (zeroed = a fresh Adam's state)."""
    images = mnist_tiny[0][:128]
    G1, D1, og1, od1 = _pair()
    G2, D2, og2, od2 = copy.deepcopy(G1), copy.deepcopy(D1), None, None
    og2 = torch.optim.Adam(G2.parameters(), lr=1e-3, betas=(0.5, 0.999))
    od2 = torch.optim.Adam(D2.parameters(), lr=1e-3, betas=(0.5, 0.999))
    steppers = [FastGANStep(*m, images, 32, 16, g_loss_nonsaturating) for m in ((G1, D1, og1, od1), (G2, D2, og2, od2))]

    saved = _snapshot(G2, D2, og2, od2, steppers[1].cursor, steppers[1].sums)
    steppers[1].run(2, torch.Generator().manual_seed(123))  # the "warm-up": moves everything
    assert len(og2.state) > 0
    _restore(saved, G2, D2, og2, od2, steppers[1].cursor, steppers[1].sums)

    for s in steppers:
        s.begin_epoch(torch.arange(128))
        s.run(3, torch.Generator().manual_seed(7))
    _assert_same(G1, G2)
    _assert_same(D1, D2)
    for k in STAT_KEYS:
        assert torch.equal(steppers[0].sums, steppers[1].sums), k


@pytest.fixture(scope="module")
def images128():
    from imagegen_lib.core import data

    return data.load_images("mnist", "train", (-1, 1), limit=128)[0]


def _run(images, fast, out=None, **kw):
    config_kw = {k: kw.pop(k) for k in list(kw) if k != "resume" and k != "max_steps"}
    config = make_tiny_config(**{"epochs": 2, "seed": 3, "log_every": 3, "sample_every": 4, **config_kw})
    return train_gan(config, images=images, out_dir=out, device="cpu", progress=False, fast=fast, **kw)


def test_train_gan_fast_path_equals_plain_loop(images128):
    """The whole loop: fast=True (eager on CPU) and fast=False give the same weights, history and
    samples, bit for bit. (On a GPU cuDNN's algorithm choices make them agree to rounding only.)"""
    plain, fast = _run(images128, fast=False), _run(images128, fast=True)
    assert plain.steps == fast.steps == 8
    _assert_same(plain.G, fast.G)
    _assert_same(plain.D, fast.D)
    assert [r["step"] for r in plain.history] == [r["step"] for r in fast.history] == [3, 6, 8]
    for a, b in zip(plain.history, fast.history):
        for k in STAT_KEYS:
            assert a[k] == b[k], k
    assert [s for s, _ in plain.samples] == [s for s, _ in fast.samples] == [4, 8]
    assert torch.equal(plain.samples[-1][1], fast.samples[-1][1])


def test_resume_across_paths_is_exact(images128, tmp_path):
    """Stop a fast run mid-epoch, resume it with the plain loop (and the reverse): the result is
    the straight run's, because both paths draw the same noise and save the same state."""
    straight = _run(images128, fast=False)
    for first, second in ((True, False), (False, True)):
        out = tmp_path / f"run_{first}"
        _run(images128, fast=first, out=out, max_steps=5)
        resumed = _run(images128, fast=second, out=out, resume=True)
        assert resumed.steps == 8
        _assert_same(straight.G, resumed.G)
        _assert_same(straight.D, resumed.D)


def test_ema_runs_on_the_fast_path_too(images128):
    """The EMA follows G outside the step, so both paths give the same EMA generator, bit for bit."""
    plain, fast = _run(images128, fast=False, ema=0.9), _run(images128, fast=True, ema=0.9)
    _assert_same(plain.G_ema, fast.G_ema)
    _assert_same(plain.G, fast.G)


def test_r1_runs_on_the_plain_step_only(images128):
    """R1's double backward is not in the fast step: by default a run with it takes the plain step
    (on CUDA too), and asking for the fast one is a clear error rather than a run without R1."""
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert fast_path_reason(cuda, False, r1=True).startswith("R1 (--r1) needs a double backward")
    assert use_fast_step(None, cuda, False, r1=True) is False
    with pytest.raises(ValueError, match=r"fast=True is not available here: R1 \(--r1\)"):
        use_fast_step(True, cpu, False, r1=True)
    with pytest.raises(ValueError, match=r"fast=True is not available here: R1 \(--r1\)"):
        _run(images128, fast=True, r1=1.0)
    G, D, og, od = _pair()
    with pytest.raises(ValueError, match="the fast step can't train this run: R1"):
        make_step(G, D, og, od, images128, make_tiny_config(r1=1.0), cpu, fast=True)


def test_conditional_gan_runs_the_fast_path_too(mnist_tiny):
    images, labels = mnist_tiny[0][:128], mnist_tiny[1][:128]
    runs = [train_gan(make_tiny_config(arch="cgan", epochs=1, log_every=2, sample_every=1000), images=images,
                      labels=labels, device="cpu", progress=False, fast=fast) for fast in (False, True)]
    _assert_same(runs[0].G, runs[1].G)
    _assert_same(runs[0].D, runs[1].D)


def test_steps_to_next_event():
    config = make_tiny_config(log_every=50, sample_every=500, ckpt_every=1000)
    assert _steps_to_next_event(0, config, 468, 10_000) == 50
    assert _steps_to_next_event(460, config, 468, 10_000) == 8  # the epoch ends first
    assert _steps_to_next_event(490, config, 468, 10_000) == 10
    assert _steps_to_next_event(490, config, 468, 493) == 3  # the run ends first


def test_fast_path_is_the_default_only_where_it_applies():
    assert fast_path_reason(torch.device("cpu"), False) is not None
    assert fast_path_reason(torch.device("cuda"), True) is not None
    assert fast_path_reason(torch.device("cuda"), False) is None
    assert use_fast_step(None, torch.device("cpu"), False) is False
    assert use_fast_step(None, torch.device("cuda"), False) is True
    assert use_fast_step(True, torch.device("cpu"), False) is True  # the tests' eager run of its steps
    with pytest.raises(ValueError, match="fast=True is not available here: DistributedDataParallel"):
        use_fast_step(True, torch.device("cuda"), True)
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        G, D, og, od = _pair()
        FastGANStep(G, D, og, od, torch.zeros(64, 1, 28, 28), 32, 16, g_loss_nonsaturating,
                    options=_cpu_options(use_graph=True))


def test_fast_step_options_default_to_what_training_ships():
    """One frozen dataclass holds the levers; its defaults are the GPU training settings, and on a
    CPU train_gan keeps only those that change no arithmetic."""
    assert SHIPPED_OPTIONS == FastStepOptions()
    assert (SHIPPED_OPTIONS.steps_per_graph, SHIPPED_OPTIONS.freeze_d, SHIPPED_OPTIONS.cudnn_benchmark,
            SHIPPED_OPTIONS.channels_last, SHIPPED_OPTIONS.side_streams, SHIPPED_OPTIONS.compile_mode,
            SHIPPED_OPTIONS.compile_which, SHIPPED_OPTIONS.projection_as_matmul,
            SHIPPED_OPTIONS.use_graph) == (1, True, True, True, True, "default", "D", True, None)
    with pytest.raises(AttributeError):
        SHIPPED_OPTIONS.freeze_d = False  # frozen: nothing changes the shipped settings by accident
    assert SHIPPED_OPTIONS.for_device(torch.device("cuda")) is SHIPPED_OPTIONS
    cpu = SHIPPED_OPTIONS.for_device(torch.device("cpu"))
    assert not (cpu.channels_last or cpu.side_streams or cpu.projection_as_matmul) and cpu.compile_mode is None
    assert (cpu.steps_per_graph, cpu.freeze_d) == (1, True)
    assert SHIPPED_OPTIONS.replace(steps_per_graph=4).steps_per_graph == 4 and SHIPPED_OPTIONS.steps_per_graph == 1
    with pytest.raises(ValueError, match="side_streams needs freeze_d"):
        SHIPPED_OPTIONS.replace(freeze_d=False)
    assert not SHIPPED_OPTIONS.replace(freeze_d=False, side_streams=False).freeze_d
    with pytest.raises(ValueError, match="steps_per_graph must be >= 1"):
        FastStepOptions(steps_per_graph=0)
    with pytest.raises(ValueError, match="compile_which"):
        FastStepOptions(compile_which="GX")


@pytest.mark.parametrize("arch", ["dcgan", "cgan"])
def test_make_step_puts_both_paths_behind_one_interface(mnist_tiny, arch):
    """make_step gives the plain step or the fast one; the loop's calls (begin_epoch, run, take_sums)
    make the same updates and the same summed statistics through either (bit for bit on a CPU)."""
    images, labels = mnist_tiny[0][:128], mnist_tiny[1][:128]
    config = make_tiny_config(arch=arch)
    conditional = arch == "cgan"
    order = torch.randperm(128, generator=torch.Generator().manual_seed(5))
    runs = []
    for fast in (False, True):
        torch.manual_seed(0)
        G, D = _build(arch, z_dim=16, width=8)
        og, od = (torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.5, 0.999)) for m in (G, D))
        step = make_step(G, D, og, od, images, config, torch.device("cpu"), fast=fast,
                         labels=labels if conditional else None)
        assert isinstance(step, FastGANStep if fast else EagerStep) and step.steps_per_call == 1
        step.begin_epoch(order, 1)
        noise = torch.Generator().manual_seed(9)
        step.run(2, noise)
        step.run(1, noise)
        runs.append((G, D, step.take_sums(), noise.get_state()))
        assert float(step.take_sums().get("loss_d", 0.0)) == 0.0  # take_sums resets
    (G1, D1, sums1, rng1), (G2, D2, sums2, rng2) = runs
    _assert_same(G1, G2)
    _assert_same(D1, D2)
    assert list(sums1) == list(sums2) == list(STAT_KEYS)
    for k in STAT_KEYS:
        assert torch.equal(sums1[k], sums2[k]), k
    assert torch.equal(rng1, rng2)  # the same noise drawn: a run may continue on the other path


def test_optimizer_checkpoints_load_whatever_implementation_wrote_them():
    """A GPU run's Adam is fused and capturable; its checkpoint must resume on a CPU's plain Adam."""
    G, _, opt, _ = _pair()
    G(torch.randn(4, 16)).mean().backward()
    opt.step()
    tensors, meta = optimizer_tensors(opt, "opt")
    for group in meta["param_groups"]:
        group.update(fused=True, capturable=True)  # as written on the GPU
    fresh = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    load_optimizer(fresh, tensors, "opt", meta)
    assert fresh.param_groups[0]["capturable"] is False and not fresh.param_groups[0]["fused"]
    assert fresh.param_groups[0]["betas"] == (0.5, 0.999)
    G(torch.randn(4, 16)).mean().backward()
    fresh.step()  # a capturable group on CPU tensors would raise here


class _StandInGraph:
    """What the fast path needs of torch.cuda.CUDAGraph, on a CPU: capture records which work was
    captured (and, like a real capture, executes none of it); replay runs that work."""

    capturing = None

    def __init__(self):
        self.owner, self.k, self.replays = None, None, 0

    def replay(self):
        self.replays += 1
        FastGANStep._steps(self.owner, self.k)


class _RecordingStepper(FastGANStep):
    def _steps(self, k):
        graph = _StandInGraph.capturing
        if graph is None:
            return super()._steps(k)
        graph.owner, graph.k = self, k


@pytest.fixture
def stand_in_cuda(monkeypatch):
    """torch.cuda's stream and graph API replaced by stand-ins, so _capture's orchestration (warm-up
    on a side stream, capture of the 1-step and K-step graphs, undoing the warm-up) runs on a CPU."""
    import contextlib

    class Stream:
        def __init__(self, *a, **k):
            pass

        def wait_stream(self, other):
            pass

    @contextlib.contextmanager
    def graph(g, **kw):
        _StandInGraph.capturing = g
        try:
            yield
        finally:
            _StandInGraph.capturing = None

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a: Stream())
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", _StandInGraph)
    monkeypatch.setattr(torch.cuda, "graph", graph)


@pytest.mark.parametrize("n_images, offset, steps, replays", [(256, 1, 7, (1, 2)), (64, 1, 1, (1, 0))])
def test_graph_orchestration_leaves_the_updates_unchanged(mnist_tiny, stand_in_cuda, n_images, offset, steps,
                                                          replays):
    """With K=3 graphs: 7 steps = two K-step replays + one 1-step replay, after a warm-up whose
    effects (weights, BN statistics, Adam state, cursor, sums) must all be undone. And an epoch of
    2 steps, started at its last one: the warm-up's 3 steps must stay inside the data."""
    images = mnist_tiny[0][:n_images]
    G1, D1, og1, od1 = _pair()
    G2, D2 = copy.deepcopy(G1), copy.deepcopy(D1)
    og2 = torch.optim.Adam(G2.parameters(), lr=1e-3, betas=(0.5, 0.999))
    od2 = torch.optim.Adam(D2.parameters(), lr=1e-3, betas=(0.5, 0.999))
    order = torch.randperm(n_images, generator=torch.Generator().manual_seed(2))

    plain = FastGANStep(G1, D1, og1, od1, images, 32, 16, g_loss_nonsaturating,
                        options=_cpu_options(steps_per_graph=3))
    graphed = _RecordingStepper(G2, D2, og2, od2, images, 32, 16, g_loss_nonsaturating,
                                options=_cpu_options(steps_per_graph=3))
    graphed.use_graph = True  # as on a GPU
    for s in (plain, graphed):
        s.begin_epoch(order, offset=offset)
        s.run(steps, torch.Generator().manual_seed(4))
    assert sorted(graphed.graphs) == [1, 3]
    assert (graphed.graphs[1].replays, graphed.graphs[3].replays) == replays
    _assert_same(G1, G2)
    _assert_same(D1, D2)
    assert torch.equal(plain.sums, graphed.sums) and int(graphed.cursor) == offset + steps


@pytest.mark.parametrize("channels_last", [False, True])
def test_projection_as_matmul_is_the_same_layer(channels_last):
    """G's first layer (7×7 transposed convolution of a 1×1 input) computed as one matrix product:
    same outputs and gradients to rounding, same parameters and state dict; other layers untouched."""
    torch.manual_seed(0)
    G, _ = build_gan("dcgan", z_dim=16, width=8)
    G2 = copy.deepcopy(G)
    projection_as_matmul(G2)
    assert type(G2.net[0]) is ProjectionAsMatmul
    assert [type(m) for m in G2.net[1:]] == [type(m) for m in G.net[1:]]  # stride-2 layers stay convolutions
    assert G2.state_dict().keys() == G.state_dict().keys()
    if channels_last:
        G2 = G2.to(memory_format=torch.channels_last)
    z = torch.randn(8, 16)
    out, out2 = G(z), G2(z)
    torch.testing.assert_close(out2, out, rtol=1e-5, atol=1e-6)
    out.square().sum().backward()
    out2.square().sum().backward()
    torch.testing.assert_close(G2.net[0].weight.grad, G.net[0].weight.grad, rtol=1e-3, atol=1e-5)
    x = torch.randn(2, 16, 3, 3)  # not a 1×1 input: the convolution itself
    assert torch.equal(G2.net[0](x), torch.nn.ConvTranspose2d.forward(G2.net[0], x))
