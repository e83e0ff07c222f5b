from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def balanced_cross_entropy(logits: Tensor,
                           label: Tensor,
                           weight: Optional[Tensor] = None,
                           ignore_index: int = 255,
                           bg_index: int = 0) -> Tensor:
    """Foreground/background-balanced cross-entropy (``methods.md`` §1.5).

    ``0.5 * CE over background pixels + 0.5 * CE over foreground pixels``,
    each part a (weighted) mean over its own pixel set. A part whose set is
    empty (or whose weights sum to 0) contributes 0, never NaN.

    Args:
        logits (Tensor): (B, C, H, W) segmentation logits.
        label (Tensor): (B, H, W) labels in [0, C) or ``ignore_index``.
        weight (Tensor, optional): (B, H, W) per-pixel weights (detached by
            the caller); each part becomes ``sum(w * CE) / sum(w)``.
        ignore_index (int): Ignored label. Defaults to 255.
        bg_index (int): The background class. Defaults to 0.

    Returns:
        Tensor: Scalar loss.
    """
    ce = F.cross_entropy(logits, label, ignore_index=ignore_index,
                         reduction='none')
    valid = label != ignore_index
    if weight is None:
        weight = torch.ones_like(ce)
    weight = weight.to(ce.dtype)
    total = ce.new_zeros(())
    for part in (valid & (label == bg_index), valid & (label != bg_index)):
        w = weight * part
        # clamp keeps an empty part at exactly 0 (0 / eps) instead of 0 / 0
        total = total + 0.5 * (w * ce).sum() / w.sum().clamp(min=1e-12)
    return total


@MODELS.register_module()
class BalancedCrossEntropyLoss(nn.Module):
    """Registered wrapper of :func:`balanced_cross_entropy`.

    Usable as an mmseg ``loss_decode`` (signature ``(logits, label, weight,
    ignore_index)``) or called directly with per-pixel weights.

    Args:
        loss_weight (float): Defaults to 1.0.
        ignore_index (int): Defaults to 255.
        loss_name (str): Defaults to 'loss_bce'.

    Example:
        >>> loss_decode = dict(type='BalancedCrossEntropyLoss',
        ...                    loss_name='loss_seg')
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 ignore_index: int = 255,
                 loss_name: str = 'loss_bce'):
        super().__init__()
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def forward(self,
                logits: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> Tensor:
        if label.dim() == 4:  # (B, 1, H, W) as mmseg heads pass it
            label = label.squeeze(1)
        if logits.shape[-2:] != label.shape[-2:]:
            raise ValueError(f'logits {tuple(logits.shape)} and label '
                             f'{tuple(label.shape)} differ in size; resize '
                             'the logits first')
        if ignore_index is None:
            ignore_index = self.ignore_index
        return self.loss_weight * balanced_cross_entropy(
            logits, label.long(), weight, ignore_index=ignore_index)

    @property
    def loss_name(self) -> str:
        return self._loss_name
