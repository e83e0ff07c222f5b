"""Pixel-adaptive refinement (PAR, AFA/ToCo; ``methods.md`` §1.6)."""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def _offsets(dilations: Sequence[int]) -> List[Tuple[int, int]]:
    """The 8 offsets {-d, 0, d}^2 \\ (0, 0) of every dilation, in order."""
    return [(dy, dx) for d in dilations for dy in (-d, 0, d)
            for dx in (-d, 0, d) if dy or dx]


def _neighbours(x: Tensor, dilations: Sequence[int]) -> Tensor:
    """(B, C, H, W) -> (B, C, 8 * len(dilations), H, W): the neighbours at
    :func:`_offsets` of every pixel, replicate padding."""
    pad = max(dilations)
    xp = F.pad(x, (pad, pad, pad, pad), mode='replicate')
    h, w = x.shape[-2:]
    return torch.stack([
        xp[..., pad + dy:pad + dy + h, pad + dx:pad + dx + w]
        for dy, dx in _offsets(dilations)
    ], dim=2)


def _offset_lengths(dilations: Sequence[int]) -> Tensor:
    """Length of each offset: d axially, sqrt(2) d diagonally."""
    return torch.tensor([math.hypot(dy, dx)
                         for dy, dx in _offsets(dilations)])


@torch.no_grad()
def par_refine(img: Tensor,
               masks: Tensor,
               dilations: Sequence[int] = (1, 2, 4, 8, 12, 24),
               num_iter: int = 10,
               w1: float = 0.3,
               w2: float = 0.01) -> Tensor:
    """Refine maps with colour/position affinities of each pixel's 48
    dilated neighbours.

    ``kappa_rgb(x, n) = mean_c -(|I_c(n) - I_c(x)| /
    ((sigma_c(x) + 1e-8) w1))^2`` (sigma = std of the neighbours),
    ``kappa_pos(x, n) = -(delta(n) / ((std
    delta + 1e-8) w1))^2`` (delta = d, or sqrt(2) d diagonally);
    ``alpha = softmax_n kappa_rgb + w2 softmax_n kappa_pos``; ``num_iter``
    times ``M <- sum_n alpha(x, n) M(n)``. The callers run it on the image
    downsampled x2.

    Args:
        img (Tensor): (B, 3, H, W) image (any consistent scale).
        masks (Tensor): (B, C, H, W) maps to refine (CAMs, probabilities).

    Returns:
        Tensor: (B, C, H, W) refined maps.
    """
    if img.shape[-2:] != masks.shape[-2:]:
        raise ValueError(f'img {tuple(img.shape[-2:])} and masks '
                         f'{tuple(masks.shape[-2:])} must have the same size')
    img = img.float()
    nb = _neighbours(img, dilations)  # (B, 3, N, H, W)
    sigma = nb.std(dim=2, keepdim=True)
    k_rgb = -((nb - img[:, :, None]).abs() / ((sigma + 1e-8) * w1))**2
    k_rgb = k_rgb.mean(dim=1)  # (B, N, H, W)
    delta = _offset_lengths(dilations).to(img)
    k_pos = -(delta / ((delta.std() + 1e-8) * w1))**2  # (N, )
    alpha = k_rgb.softmax(dim=1) + \
        w2 * k_pos.softmax(dim=0)[None, :, None, None]
    out = masks.float()
    for _ in range(num_iter):
        out = (_neighbours(out, dilations) * alpha[:, None]).sum(dim=2)
    return out.to(masks.dtype)
