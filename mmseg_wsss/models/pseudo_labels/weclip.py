"""WeCLIP's pure functions (``clip.md`` §2): the refinement module's layer
selection and the decoder-affinity loss with its targets."""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def rfm_select(attns: Sequence[Tensor], aff_seg: Tensor,
               last: int = 6, signed: bool = True) -> Tuple[Tensor, Tensor]:
    """WeCLIP's refinement module (RFM): pick CLIP attention layers that
    agree with the decoder's affinity and weight them by it.

    ``d_l = sum_ij (A_seg - A_l)`` over the ``last`` layers (the reference's
    *signed* sum; ``signed=False``: the paper's absolute distance
    ``sum_ij |A_seg - A_l|``); keep the layers with ``d_l <= mean(d)``;
    ``A = (sum_kept A_l) / (n_kept + 1e-5) * A_seg`` (A_seg detached).

    Args:
        attns (Sequence[Tensor]): (N, N) patch-to-patch attention per layer.
        aff_seg (Tensor): (N, N) decoder affinity ``sigmoid(F^T F)``.
        last (int): How many of the last layers to consider (VOC 6, COCO
            10).

    Returns:
        tuple: the (N, N) refined attention and the (last, ) bool mask of
        the kept layers.
    """
    layers = torch.stack(list(attns)[-last:])
    seg = aff_seg.detach()
    diff = seg[None] - layers
    d = (diff if signed else diff.abs()).flatten(1).sum(1)
    keep = d <= d.mean()
    att = layers[keep].sum(0) / (keep.sum() + 1e-5)
    return att * seg, keep


def affinity_targets(label: Tensor, size: Sequence[int], radius: int = 8,
                     ignore_index: int = 255) -> Tensor:
    """(B, N, N) pair targets from (B, H, W) pseudo-labels: 1 for the same
    label, 0 otherwise, ``ignore_index`` for pairs farther than ``radius``
    (Chebyshev, on the ``size`` grid) or with an ignored pixel. Labels are
    downsampled to ``size`` with ``nearest``."""
    small = F.interpolate(label[:, None].float(), size=tuple(size),
                          mode='nearest')[:, 0].long()
    b = small.shape[0]
    flat = small.reshape(b, -1)
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    ys, xs = ys.flatten().to(label.device), xs.flatten().to(label.device)
    near = ((ys[:, None] - ys[None]).abs() <= radius) & (
        (xs[:, None] - xs[None]).abs() <= radius)
    same = (flat[:, :, None] == flat[:, None, :]).long()
    valid = (flat != ignore_index)[:, :, None] & (flat != ignore_index)[
        :, None, :] & near[None]
    return torch.where(valid, same, torch.full_like(same, ignore_index))


def affinity_loss(aff: Tensor, target: Tensor,
                  ignore_index: int = 255) -> Tensor:
    """``0.5 sum_pos (1 - A) / (n_pos + 1) + 0.5 sum_neg A / (n_neg + 1)``
    over the non-ignored pairs (WeCLIP's affinity loss)."""
    pos = (target == 1).to(aff.dtype)
    neg = (target == 0).to(aff.dtype)
    return 0.5 * (pos * (1 - aff)).sum() / (pos.sum() + 1) + \
        0.5 * (neg * aff).sum() / (neg.sum() + 1)
