"""The GAN update on one GPU, fast: the whole D+G step replayed as one CUDA graph.

Why it is needed. At batch 128 the 28×28 DCGAN's training step is a couple of hundred *small*
kernels (convolutions of a 7×7 or 14×14 map, batch norms, Adam's updates). Each one takes a few
microseconds on an H100; launching it from Python takes about as long, and every ``.item()`` or
CPU→GPU copy of a pageable tensor makes the CPU wait for the GPU to drain. The eager step is
*launch-bound*: bf16 or ``channels_last`` make the kernels faster but leave the launches, so alone
they buy nothing (or lose, because casts are extra kernels). What pays first is launching less.
Once the whole step is one graph, the kernels' own time and the gaps between dependent kernels are
what is left — and *then* bf16, ``channels_last``, a second stream and fused kernels pay.

What :class:`FastGANStep` does differently from :func:`imagegen_lib.gan.step.gan_train_step`, and
why each change leaves the mathematics alone (bf16 aside, which rounds: ``GANConfig.bf16``):

1. **The data set stays on the GPU**, and the batch is gathered *inside* the graph:
   ``images.index_select(0, order[cursor·B : (cursor+1)·B])``, with the epoch's permutation and
   the step counter ``cursor`` kept in device tensors. No Python indexing, no copy per step.
2. **The noise** is drawn on the CPU from the run's own ``torch.Generator``, batch by batch,
   exactly as the plain loop draws it, into pinned memory, and copied asynchronously. Both paths
   therefore train on the same numbers, and ``--resume`` stays exact: the generator's state after
   step ``k`` is the same whichever path made step ``k``.
3. **Adam** runs fused (one kernel per optimizer) with ``capturable=True``: its step counter lives
   on the GPU, which graph capture requires.
4. **D is frozen during the G step** (``freeze_d``: ``requires_grad_(False)``): the plain step
   computes D's weight gradients there only to throw them away at the next ``zero_grad``. G's
   gradient is the same either way (it flows through D's *activations*, not its weight gradients).
5. **The statistics** (losses, D(x), D(G(z))) are summed on the GPU; the loop reads them once
   every ``log_every`` steps (one synchronisation) instead of every step.
6. **CUDA graph** (``use_graph``): ``steps_per_graph`` whole updates are captured once and
   replayed — one launch instead of hundreds. Capture needs a few eager warm-up steps first (cuDNN
   picks its algorithms, Adam creates its state, ``torch.compile`` compiles); they are undone
   afterwards, so the run starts from the state it was given, bit for bit.
7. **Side streams** (``side_streams``): D's pass over the real batch doesn't depend on G, so it runs
   beside G's forward pass, and the two halves of D's backward pass run side by side too; the
   logged statistics are computed on a third stream. No kernel of this size fills an H100, so two
   at once cost little more than one.
8. **channels_last** (``channels_last``: NHWC tensors): cuDNN's bf16 tensor-core kernels want
   them; NCHW makes it transpose before and after most convolutions.
9. **torch.compile of D** (``compile_mode``, ``compile_which="D"``): Inductor fuses each batch norm
   with its LeakyReLU (forward and backward) into a few kernels; the compiled code is captured
   into the same graph. (Compiling G as well made the step slower in the benchmark, so G stays
   eager.) If compiling fails, the step is captured without it.
10. **G's first layer as a matrix product** (``projection_as_matmul``, :class:`~.fast_layers.ProjectionAsMatmul`):
   the 7×7 transposed convolution of the 1×1 noise is a GEMM, which cuBLAS runs far faster than
   cuDNN runs the convolution. (This layer and the layout change of 8 are in :mod:`.fast_layers`.)

The names in brackets are the fields of :class:`FastStepOptions`, the switches the benchmarks turn
one at a time; its defaults (:data:`SHIPPED_OPTIONS`) are what ``train_gan`` runs on a GPU.
On the CPU (or with ``use_graph=False``) the same step functions run eagerly: that is how the
tests check, without a GPU, that the fast path computes what the plain loop computes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings

import torch
from torch import nn

from .fast_layers import keep_projection_nchw, projection_as_matmul, to_channels_last
from .losses import d_loss_bce
from .step import gan_train_step

__all__ = ["STAT_KEYS", "SHIPPED_OPTIONS", "FastGANStep", "FastStepOptions", "gan_train_step_frozen_d",
           "adam_options"]

STAT_KEYS = ("loss_d", "loss_g", "d_real", "d_fake")  # what gan_train_step returns, in this order


@dataclasses.dataclass(frozen=True)
class FastStepOptions:
    """Which of :class:`FastGANStep`'s levers (numbered in this module's docstring) are on?

    The defaults are what ``train_gan`` runs on a GPU (:data:`SHIPPED_OPTIONS`). Nothing in training
    changes them: the benchmarks turn them one at a time to measure each lever, the tests to compare
    the paths (``SHIPPED_OPTIONS.replace(...)``). bf16 is not here: it rounds, so it is a setting of
    the run (``GANConfig.bf16``, ``--fp32``).
    """

    steps_per_graph: int = 1  # 6. whole updates per graph replay
    freeze_d: bool = True  # 4. D's weight gradients skipped in the G step (gan_train_step_frozen_d)
    cudnn_benchmark: bool = True  # cuDNN times its algorithms at capture and keeps the fastest
    channels_last: bool = True  # 8. NHWC weights, images and Adam moments
    side_streams: bool = True  # 7. D(real) beside G(z), statistics on a third stream (CUDA; needs freeze_d)
    compile_mode: str | None = "default"  # 9. torch.compile's mode for the modules in compile_which; None: none
    compile_which: str = "D"  # 9. which of "G" and "D" to compile (compiling G as well was slower)
    projection_as_matmul: bool = True  # 10. G's first layer as one GEMM (ProjectionAsMatmul)
    use_graph: bool | None = None  # 6. None: capture on CUDA, run eagerly elsewhere; False: never capture

    def __post_init__(self):
        if self.steps_per_graph < 1:
            raise ValueError(f"steps_per_graph must be >= 1, got {self.steps_per_graph}")
        if self.side_streams and not self.freeze_d:
            raise ValueError("side_streams needs freeze_d=True (it is an option of gan_train_step_frozen_d); "
                             "turn side_streams off too")
        if not set(self.compile_which) <= {"G", "D"}:
            raise ValueError(f"compile_which names modules 'G' and 'D', got {self.compile_which!r}")

    def replace(self, **changes) -> FastStepOptions:
        """These options with ``changes`` (field=value) made."""
        return dataclasses.replace(self, **changes)

    def for_device(self, device: torch.device) -> FastStepOptions:
        """These options where the device has what they need (CUDA); elsewhere (the tests' CPU runs of
        the fast path) only the levers that change no arithmetic: the same step functions, eagerly,
        bit for bit the plain loop's."""
        if torch.device(device).type == "cuda":
            return self
        return self.replace(channels_last=False, side_streams=False, compile_mode=None, projection_as_matmul=False)


SHIPPED_OPTIONS = FastStepOptions()  # what train_gan runs on a GPU (plus GANConfig.bf16, on by default there)


def gan_train_step_frozen_d(G, D, opt_g, opt_d, real, z, g_loss_fn, autocast=contextlib.nullcontext,
                            labels=None, side_stream=None, stats_stream=None):
    """:func:`~imagegen_lib.gan.step.gan_train_step`, except that D's parameters don't require gradients
    during the G step, so its backward pass skips D's weight gradients (which the plain step computes
    and then discards). Same updates, fewer kernels; ``tests/test_fast_step.py`` checks the equality.

    ``side_stream`` (CUDA): D's pass over the *real* batch does not depend on G, so it runs on a second
    stream while G draws the fakes; autograd runs each backward op on its forward op's stream, so
    the two branches of D's backward overlap too. At batch 128 no kernel fills the GPU, so two
    branches at once take little longer than one. ``stats_stream`` (CUDA): the returned statistics
    are computed there, off the main stream's chain of dependent kernels (the caller joins it)."""
    cond = () if labels is None else (labels,)
    # --- Discriminator step: gan_train_step's, with D(real) possibly on the side stream. ----------
    main = torch.cuda.current_stream() if side_stream is not None else None
    with autocast():
        if side_stream is None:
            fake = G(z, *cond)
            real_logits = D(real, *cond)
        else:
            side_stream.wait_stream(main)  # fork: the batch is gathered on the main stream
            with torch.cuda.stream(side_stream):
                real_logits = D(real, *cond)
            fake = G(z, *cond)  # meanwhile, on the main stream
            main.wait_stream(side_stream)  # D's batch-norm running statistics: real's update first
        fake_logits = D(fake.detach(), *cond)
        loss_d = d_loss_bce(real_logits, fake_logits)
    with _forked(stats_stream):
        stats = {"loss_d": loss_d.detach(),
                 "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
                 "d_fake": torch.sigmoid(fake_logits.detach().float()).mean()}
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    if side_stream is not None:
        main.wait_stream(side_stream)  # join: Adam needs the real branch's gradients too
    opt_d.step()

    # --- Generator step through the updated, *frozen* D. -----------------------------------------
    trainable = [p for p in D.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        with autocast():
            loss_g = g_loss_fn(D(fake, *cond))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
    finally:
        for p in trainable:
            p.requires_grad_(True)
    stats["loss_g"] = loss_g.detach()
    opt_g.step()
    return {key: stats[key] for key in STAT_KEYS}


@contextlib.contextmanager
def _forked(stream):
    """Run the block on ``stream`` after everything queued so far on the current one (no-op: None)."""
    if stream is None:
        yield
        return
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        yield


def adam_options(device: torch.device, fast: bool) -> dict:
    """Extra ``torch.optim.Adam`` arguments for the fast path on CUDA: one fused kernel per step, and
    the step counter on the GPU (``capturable``) so the update can live inside a CUDA graph."""
    if fast and torch.device(device).type == "cuda":
        return {"fused": True, "capturable": True}
    return {}


class FastGANStep:
    """GAN updates on a resident data set, ``steps_per_graph`` at a time, as a replayed CUDA graph.

    Use (the interface of :class:`imagegen_lib.gan.stepper.GANStep`, which ``train_gan`` calls)::

        stepper = FastGANStep(G, D, opt_g, opt_d, images, batch_size, z_dim, g_loss_fn)
        stepper.begin_epoch(order, offset)   # the epoch's permutation (CPU, int64), first step index
        stepper.run(k, noise_gen)            # k updates; the noise comes from noise_gen, B rows a step
        sums = stepper.take_sums()           # {'loss_d': Σ over the steps since the last call, ...}

    ``opt_g``/``opt_d`` must be Adam with :func:`adam_options` (``capturable``) for graph capture.
    ``options`` says which levers are on (:class:`FastStepOptions`); by default the set ``train_gan``
    uses on this device, ``SHIPPED_OPTIONS.for_device(images.device)``.
    """

    warmup_steps = 3  # eager steps before capture (cuDNN, cuBLAS and Adam set themselves up in them)

    def __init__(self, G: nn.Module, D: nn.Module, opt_g, opt_d, images: torch.Tensor, batch_size: int,
                 z_dim: int, g_loss_fn, *, labels: torch.Tensor | None = None, bf16: bool = False,
                 options: FastStepOptions | None = None):
        self.device = images.device
        on_cuda = self.device.type == "cuda"
        o = self.options = SHIPPED_OPTIONS.for_device(self.device) if options is None else options
        self.use_graph = on_cuda if o.use_graph is None else bool(o.use_graph)
        if self.use_graph and not on_cuda:
            raise ValueError("CUDA graphs need a CUDA device; FastStepOptions(use_graph=False) runs the same "
                             "steps eagerly")
        self.G, self.D, self.opt_g, self.opt_d = G, D, opt_g, opt_d
        # torch.compile'd modules run *inside* the captured graph: Inductor fuses the batch norms and
        # activations into fewer kernels, the graph removes the launches. (The warm-up compiles.)
        comp = lambda m, name: (torch.compile(m, mode=o.compile_mode, dynamic=False)  # noqa: E731
                                if o.compile_mode and name in o.compile_which else m)
        self.G_run, self.D_run = comp(G, "G"), comp(D, "D")
        self.g_loss_fn = g_loss_fn
        self.B, self.z_dim, self.K = batch_size, z_dim, o.steps_per_graph
        self.steps_per_call = self.K  # GANStep: what the loop asks of run() at most (one replay)
        self.steps_per_epoch = images.shape[0] // batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(f"{images.shape[0]} images are fewer than one batch of {batch_size}")
        self.update = gan_train_step_frozen_d if o.freeze_d else gan_train_step
        streams = o.side_streams and on_cuda
        self.side_stream = torch.cuda.Stream(self.device) if streams else None
        self.stats_stream = torch.cuda.Stream(self.device) if streams else None
        if self.side_stream is not None and hasattr(torch.autograd.graph, "set_warn_on_accumulate_grad_stream_mismatch"):
            # D's weight gradients arrive from both streams by design and autograd synchronises
            # them (tests/test_fast_step_cuda.py: graph and eager steps agree bit for bit); its
            # warning that the streams differ is about a cost we pay knowingly, once per capture.
            torch.autograd.graph.set_warn_on_accumulate_grad_stream_mismatch(False)
        self.autocast = ((lambda: torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False))
                         if bf16 and on_cuda else contextlib.nullcontext)  # no weight-cast cache: graphs
        self.cudnn_benchmark = o.cudnn_benchmark
        if o.projection_as_matmul:
            projection_as_matmul(G)
        if o.channels_last:
            to_channels_last(G, D, opt_g, opt_d)
            if o.compile_mode and "G" in o.compile_which:
                keep_projection_nchw(G)
            images = images.contiguous(memory_format=torch.channels_last)
        self.images = images
        self.labels = labels
        # Static buffers: the graph reads and writes these addresses on every replay.
        self.order = torch.arange(images.shape[0], device=self.device)  # the epoch's permutation
        self.cursor = torch.zeros((), dtype=torch.long, device=self.device)  # step index within the epoch
        self.batch_offsets = torch.arange(batch_size, device=self.device)
        self.z = torch.zeros(self.K * batch_size, z_dim, device=self.device)  # one replay's noise
        self.sums = torch.zeros(len(STAT_KEYS), device=self.device)
        self.graphs: dict[int, torch.cuda.CUDAGraph] | None = None

    # -- the work of k steps (captured once, or run eagerly) --------------------------------------

    def _steps(self, k: int) -> None:
        for j in range(k):
            positions = self.cursor * self.B + self.batch_offsets  # (B,) on the device
            idx = self.order.index_select(0, positions)
            real = self.images.index_select(0, idx)  # (B, 1, 28, 28)
            z = self.z[j * self.B:(j + 1) * self.B]  # (B, z_dim)
            labels = None if self.labels is None else self.labels.index_select(0, idx)
            extra = {} if labels is None else {"labels": labels}
            if self.side_stream is not None:
                extra.update(side_stream=self.side_stream, stats_stream=self.stats_stream)
            stats = self.update(self.G_run, self.D_run, self.opt_g, self.opt_d, real, z, self.g_loss_fn,
                                self.autocast, **extra)
            with _forked(self.stats_stream):
                self.sums.add_(torch.stack([stats[key].float() for key in STAT_KEYS]))
            if self.stats_stream is not None:
                torch.cuda.current_stream().wait_stream(self.stats_stream)  # joined before the step ends
            self.cursor.add_(1)

    # -- public API ---------------------------------------------------------------------------------

    def begin_epoch(self, order: torch.Tensor, offset: int = 0) -> None:
        """Load an epoch's permutation of the data (CPU int64) and start at step ``offset``."""
        if order.shape != self.order.shape:
            raise ValueError(f"order must be a permutation of {self.order.shape[0]} indices, got {tuple(order.shape)}")
        self.order.copy_(_pinned(order.to(torch.long)), non_blocking=True)
        self.cursor.fill_(offset)

    def run(self, k: int, noise_gen: torch.Generator) -> None:
        """``k`` updates from the current position; none may cross the epoch's end."""
        if self.use_graph and self.graphs is None:
            self._capture()
        done = 0
        while done < k:
            n = self.K if k - done >= self.K else 1
            self._load_noise(n, noise_gen)
            if self.graphs is not None:
                self.graphs[n].replay()
            else:
                self._steps(n)
            done += n

    def take_sums(self) -> dict[str, torch.Tensor]:
        """The statistics summed over the steps since the last call (device tensors), then reset."""
        sums = self.sums.clone()
        self.sums.zero_()
        return dict(zip(STAT_KEYS, sums.unbind()))

    # -- internals ------------------------------------------------------------------------------------

    def _load_noise(self, n_steps: int, noise_gen: torch.Generator) -> None:
        # One randn call per step, as the plain loop makes them: the same numbers, in the same order.
        host = _pinned_empty((n_steps * self.B, self.z_dim), self.device.type == "cuda")
        for j in range(n_steps):
            torch.randn(self.B, self.z_dim, generator=noise_gen, out=host[j * self.B:(j + 1) * self.B])
        # Asynchronous from pinned memory: the CPU draws the next batch while the GPU trains on this
        # one. (The caching host allocator keeps `host` alive until the copy has run.)
        self.z[:n_steps * self.B].copy_(host, non_blocking=True)

    def _capture(self) -> None:
        try:
            self._capture_graphs()
            return
        except Exception as e:  # noqa: BLE001 - any failure: the same steps, with less machinery
            compiled = self.G_run is not self.G or self.D_run is not self.D
            warnings.warn(f"CUDA graph capture failed ({type(e).__name__}: {str(e)[:300]}); "
                          + ("trying again without torch.compile" if compiled else
                             "running the same steps without a graph (slower, same results)"),
                          RuntimeWarning, stacklevel=3)
            self.G_run, self.D_run, self.graphs = self.G, self.D, None
            if not compiled:
                self.use_graph = False
                return
        try:
            self._capture_graphs()
        except Exception as e:  # noqa: BLE001
            warnings.warn(f"CUDA graph capture failed again ({type(e).__name__}: {str(e)[:300]}); running the "
                          "same steps without a graph (slower, same results)", RuntimeWarning, stacklevel=3)
            self.graphs, self.use_graph = None, False

    def _capture_graphs(self) -> None:
        saved = _snapshot(self.G, self.D, self.opt_g, self.opt_d, self.cursor, self.sums)
        benchmark_before = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = self.cudnn_benchmark or benchmark_before
        try:
            self._warm_up()
            graphs = {}
            for n in sorted({1, self.K}):
                # As in PyTorch's whole-network capture recipe: no gradient tensors going in, so the
                # captured backward allocates them in the graph's own memory pool.
                self.opt_g.zero_grad(set_to_none=True)
                self.opt_d.zero_grad(set_to_none=True)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    self._steps(n)
                graphs[n] = graph
            self.graphs = graphs
        finally:
            torch.backends.cudnn.benchmark = benchmark_before
            _restore(saved, self.G, self.D, self.opt_g, self.opt_d, self.cursor, self.sums)

    def _warm_up(self) -> None:
        """A few eager steps on a side stream (what graph capture asks for): cuDNN/cuBLAS pick their
        algorithms and workspaces, Adam creates its state. Their effects are undone by the caller."""
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            self.z.copy_(torch.randn(self.z.shape, generator=torch.Generator().manual_seed(0)))
            for _ in range(max(1, self.warmup_steps)):
                self.cursor.zero_()  # always a valid batch, however short the epoch
                self._steps(1)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        torch.cuda.synchronize(self.device)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def _pinned(x: torch.Tensor) -> torch.Tensor:
    return x.pin_memory() if torch.cuda.is_available() else x


def _pinned_empty(shape, pin: bool) -> torch.Tensor:
    return torch.empty(shape, pin_memory=pin)


@torch.no_grad()
def _snapshot(G, D, opt_g, opt_d, *tensors) -> dict:
    return {
        "modules": [{k: v.clone() for k, v in m.state_dict().items()} for m in (G, D)],
        "optimizers": [{p: {k: v.clone() for k, v in st.items() if torch.is_tensor(v)} for p, st in opt.state.items()}
                       for opt in (opt_g, opt_d)],
        "tensors": [t.clone() for t in tensors],
    }


@torch.no_grad()
def _restore(saved: dict, G, D, opt_g, opt_d, *tensors) -> None:
    """Put back weights, batch-norm statistics, Adam's moments and step counts *in place* (the graph
    holds their addresses). Adam state that the warm-up created is zeroed: a fresh Adam's state."""
    for module, state in zip((G, D), saved["modules"]):
        for k, v in module.state_dict().items():
            v.copy_(state[k])
    for opt, state in zip((opt_g, opt_d), saved["optimizers"]):
        for p, st in opt.state.items():
            for k, v in st.items():
                if torch.is_tensor(v):
                    v.copy_(state[p][k]) if p in state else v.zero_()
    for t, v in zip(tensors, saved["tensors"]):
        t.copy_(v)
