"""How the fast GPU step changes which kernels run without changing the model: G's first layer
as one matrix product (:class:`ProjectionAsMatmul`) and the weights in NHWC layout (``channels_last``).

Both are levers of :class:`imagegen_lib.gan.fast_step.FastGANStep` (``FastStepOptions.projection_as_matmul``,
``FastStepOptions.channels_last``); the parameters and the state dict stay the same, so checkpoints
don't know they were used.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ProjectionAsMatmul", "projection_as_matmul", "keep_projection_nchw", "to_channels_last"]


class ProjectionAsMatmul(nn.ConvTranspose2d):
    """A k×k transposed convolution (stride 1, no padding) of a 1×1 input — DCGAN's first layer —
    *is* a matrix product: ``out[n, c, i, j] = Σ_k z[n, k] · W[k, c, i, j]``. cuDNN runs it as a
    convolution wrapped in layout transforms; as one GEMM (and its weight gradient as another) it
    is several times cheaper. Same parameters, same state dict; other inputs take the convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (1, 1):
            return super().forward(x)
        n, (kh, kw) = x.shape[0], self.kernel_size
        # W (in, out, kh, kw) read as (in, kh·kw·out): a view when W is channels_last.
        w = self.weight.permute(0, 2, 3, 1).reshape(self.in_channels, kh * kw * self.out_channels)
        out = (x.flatten(1) @ w).view(n, kh, kw, self.out_channels).permute(0, 3, 1, 2)  # (N, out, kh, kw), NHWC
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


def projection_as_matmul(G) -> None:
    """Make every DCGAN-style projection layer of ``G`` (stride 1, no padding) a :class:`ProjectionAsMatmul`."""
    for m in G.modules():
        if (type(m) is nn.ConvTranspose2d and m.stride == (1, 1) and m.padding == (0, 0)
                and m.output_padding == (0, 0) and m.dilation == (1, 1) and m.groups == 1):
            m.__class__ = ProjectionAsMatmul  # the computation only: parameters and hooks stay


def keep_projection_nchw(G) -> None:
    """Put G's projection weight (the layer that takes the (N, z, 1, 1) noise) back in NCHW, for a
    compiled G in channels_last: a 1×1 input is NCHW and NHWC at once, and torch.compile's shape
    rules then expect a weight gradient in a layout cuDNN doesn't return (an AssertionError in the
    compiled backward). With that weight left NCHW both agree."""
    for m in G.modules():
        if isinstance(m, nn.ConvTranspose2d) and m.stride == (1, 1) and m.padding == (0, 0):
            m.weight.data = m.weight.data.contiguous()


def to_channels_last(G, D, opt_g, opt_d) -> None:
    """Convert the 4-D weights (and any Adam moments already made for them) to NHWC strides."""
    for m in (G, D):
        m.to(memory_format=torch.channels_last)
    for opt in (opt_g, opt_d):
        for p, st in opt.state.items():
            for k, v in st.items():
                if torch.is_tensor(v) and v.dim() == 4:
                    st[k] = v.contiguous(memory_format=torch.channels_last)
