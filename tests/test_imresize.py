"""imagegen_lib.sr.imresize: MATLAB's bicubic imresize, checked against an independent per-pixel port."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from imagegen_lib.sr.imresize import contributions, imresize, imresize_uint8, output_size


def _reference_resize_1d(line: np.ndarray, scale: float, out_len: int) -> np.ndarray:
    """MATLAB's algorithm written out pixel by pixel (no vectorisation, no shared code)."""
    n = len(line)
    kernel_scale = scale if scale < 1 else 1.0  # antialiasing stretches the kernel when shrinking
    support = 4.0 / kernel_scale
    out = np.zeros(out_len)
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        taps = range(int(math.floor(u - support / 2)), int(math.floor(u - support / 2)) + int(math.ceil(support)) + 2)
        weights, values = [], []
        for j in taps:
            d = abs(kernel_scale * (u - j))
            w = kernel_scale * ((1.5 * d ** 3 - 2.5 * d ** 2 + 1) if d <= 1 else
                                (-0.5 * d ** 3 + 2.5 * d ** 2 - 4 * d + 2) if d <= 2 else 0.0)
            k = j
            while k < 1 or k > n:  # symmetric padding: ... 2 1 | 1 2 ... n | n n-1 ...
                k = 1 - k if k < 1 else 2 * n + 1 - k
            weights.append(w)
            values.append(line[k - 1])
        out[x - 1] = np.dot(weights, values) / np.sum(weights)
    return out


def _reference_resize(img: np.ndarray, scale: float) -> np.ndarray:
    h, w = img.shape
    oh, ow = output_size(h, scale), output_size(w, scale)
    rows = np.stack([_reference_resize_1d(img[:, c], scale, oh) for c in range(w)], axis=1)  # rows first
    return np.stack([_reference_resize_1d(rows[r], scale, ow) for r in range(oh)], axis=0)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 0.9, 0.6, 2, 3, 4, 1.5])
def test_matches_an_independent_port_of_matlab(scale):
    img = np.random.default_rng(0).random((23, 17))
    ours = imresize(torch.from_numpy(img), scale).numpy()
    ref = _reference_resize(img, scale)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-12


def test_interior_weights_of_x2_upsampling_are_keys_cubic_at_quarter_offsets():
    idx, w = contributions(20, 40, 2.0)
    # output pixel 10 (0-based) sits at input position 4.75 (0-based): taps 3, 4, 5, 6 at distances 1.75, .75, .25, 1.25
    assert idx[10].tolist() == [3, 4, 5, 6]
    assert np.allclose(w[10], [-0.0234375, 0.2265625, 0.8671875, -0.0703125], atol=1e-15)
    assert np.allclose(w.sum(1), 1)


def test_borders_are_mirrored():
    idx, _ = contributions(5, 10, 2.0)
    assert idx[0].tolist() == [1, 0, 0, 1]  # 0-based: positions -2, -1, 0, 1 -> 1, 0, 0, 1


@pytest.mark.parametrize("scale", [1 / 3, 0.7, 2, 3])
def test_constant_image_stays_constant(scale):
    x = torch.full((2, 3, 19, 26), 0.37, dtype=torch.float64)
    assert torch.allclose(imresize(x, scale), torch.full_like(imresize(x, scale), 0.37), atol=1e-12)
    u8 = torch.full((3, 19, 26), 200, dtype=torch.uint8)
    assert torch.equal(imresize_uint8(u8, scale), torch.full_like(imresize_uint8(u8, scale), 200))


@pytest.mark.parametrize("shape,scale,expected", [((30, 33), 1 / 3, (10, 11)), ((31, 32), 1 / 2, (16, 16)),
                                                   ((10, 7), 3, (30, 21)), ((255, 300), 1 / 3, (85, 100))])
def test_output_size_is_matlabs_ceil(shape, scale, expected):
    assert tuple(imresize(torch.rand(shape), scale).shape) == expected
    assert tuple(imresize(torch.rand(shape), size=(5, 9)).shape) == (5, 9)


def test_layouts_agree_and_batches_are_independent():
    x = torch.rand(2, 3, 12, 15, dtype=torch.float64)
    batched = imresize(x, 1 / 3)
    assert torch.allclose(imresize(x[1], 1 / 3), batched[1])
    assert torch.allclose(imresize(x[1, 2], 1 / 3), batched[1, 2])


def test_antialiasing_removes_a_checkerboard_when_shrinking():
    checker = (torch.arange(36)[:, None] + torch.arange(36)[None, :]) % 2
    small = imresize(checker.double(), 1 / 3)
    aliased = imresize(checker.double(), 1 / 3, antialias=False)  # samples land on pixel centres
    assert small[2:-2, 2:-2].sub(0.5).abs().max() < 0.05  # the low-pass filter averaged the pattern away
    assert aliased[2:-2, 2:-2].sub(0.5).abs().max() > 0.45  # plain sampling turns it into a coarser checkerboard


def test_uint8_rounds_each_pass_like_matlab():
    img = torch.randint(0, 256, (3, 30, 27), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = imresize_uint8(img, 1 / 3)
    assert out.dtype == torch.uint8 and out.shape == (3, 10, 9)
    # one pass at a time, rounded (half away from zero) and clipped in between
    rows = torch.floor(imresize(img.double(), size=(10, 27)).clamp(0, 255) + 0.5)
    both = torch.floor(imresize(rows, size=(10, 9)).clamp(0, 255) + 0.5)
    assert torch.equal(out, both.to(torch.uint8))
    assert (out.double() - imresize(img.double(), 1 / 3)).abs().max() <= 1.5


def test_differentiable_on_float():
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, 2), (x,))


def test_bad_inputs_are_explained():
    with pytest.raises(TypeError, match="imresize_uint8"):
        imresize(torch.zeros(4, 4, dtype=torch.uint8), 2)
    with pytest.raises(TypeError, match="uint8"):
        imresize_uint8(torch.zeros(4, 4), 2)
    with pytest.raises(ValueError, match="exactly one of"):
        imresize(torch.zeros(4, 4), 2, size=(8, 8))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        imresize(torch.zeros(1, 1, 1, 4, 4), 2)
    with pytest.raises(ValueError, match="> 0"):
        imresize(torch.zeros(4, 4), -1)
