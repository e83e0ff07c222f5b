"""APC's CAM-free patch classifier (``methods.md`` §3)."""
import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class AdaptiveKPooling(nn.Module):
    """Adaptive-K pooling (AKP) of per-patch class scores to image scores.

    Per image and class take the top ``k_max`` patch scores
    ``s_1 >= ... >= s_kmax`` and average those that pass the criterion:
    ``s_1 - s_k <= delta`` (``'difference'``) or ``s_k / s_1 >= rho``
    (``'ratio'``). The selection mask is a prefix (scores are sorted) and is
    detached, so gradient reaches only the selected patches. Special cases
    (the APC ablation): ``delta=0`` is global max pooling, ``delta>=1`` (for
    scores in [0, 1]) the fixed top-``k_max`` mean; ``mode='max'``,
    ``'avg'`` and ``'topk'`` name them (``'avg'`` is global average
    pooling). Usable in any head: the input is (B, N, C), the output (B, C).

    Args:
        k_max (int): K_max. Default 6.
        delta (float): Difference threshold δ. Default 0.2.
        criterion (str): ``'difference'`` (default) or ``'ratio'``.
        rho (float): Ratio threshold for ``'ratio'``. Default 0.8.
        mode (str): ``'akp'`` (default), ``'max'``, ``'avg'`` or ``'topk'``.

    Example:
        >>> pooling = dict(type='AdaptiveKPooling', mode='akp', k_max=6,
        ...                delta=0.2, criterion='difference')
    """

    def __init__(self,
                 k_max: int = 6,
                 delta: float = 0.2,
                 criterion: str = 'difference',
                 rho: float = 0.8,
                 mode: str = 'akp'):
        super().__init__()
        if mode not in ('akp', 'max', 'avg', 'topk'):
            raise ValueError(f"mode must be 'akp', 'max', 'avg' or 'topk', "
                             f'got {mode!r}')
        if criterion not in ('difference', 'ratio'):
            raise ValueError(f"criterion must be 'difference' or 'ratio', "
                             f'got {criterion!r}')
        if k_max < 1 or delta < 0:
            raise ValueError(f'need k_max >= 1 and delta >= 0, got '
                             f'{k_max}, {delta}')
        self.k_max, self.delta = k_max, delta
        self.criterion, self.rho, self.mode = criterion, rho, mode

    def selection(self, top: Tensor) -> Tensor:
        """(B, k, C) sorted top scores -> (B, k, C) float 0/1 mask."""
        if self.mode == 'max':
            m = torch.zeros_like(top)
            m[:, 0] = 1
            return m
        if self.mode == 'topk':
            return torch.ones_like(top)
        first = top[:, :1]
        if self.criterion == 'difference':
            keep = (first - top) <= self.delta
        else:
            keep = top >= self.rho * first
        keep[:, 0] = True
        return keep.float()

    def forward(self, scores: Tensor) -> Tensor:
        """(B, N, C) patch scores -> (B, C) image scores."""
        if self.mode == 'avg':
            return scores.mean(dim=1)
        k = min(self.k_max, scores.shape[1])
        top = scores.topk(k, dim=1)[0]
        m = self.selection(top.detach())
        return (m * top).sum(1) / m.sum(1)

    def selected_k(self, scores: Tensor) -> Tensor:
        """(B, C) number of patches each image score averages."""
        if self.mode == 'avg':
            return scores.new_full(
                (scores.shape[0], scores.shape[2]), scores.shape[1])
        k = min(self.k_max, scores.shape[1])
        return self.selection(scores.topk(k, dim=1)[0]).sum(1)


@MODELS.register_module()
class HVBiLSTM(nn.Module):
    """ViT-PCM's horizontal-vertical BiLSTM token refiner.

    Dropout, then one bidirectional LSTM along every row and one along every
    column of the (h, w) token grid; their outputs (4 x ``hidden``) are
    concatenated and projected back to C channels when 4 x hidden != C.

    Args:
        in_channels (int): C.
        hidden (int): Hidden size per direction. Default 192 (4 x 192 = 768).
        dropout (float): Default 0.2.

    Example:
        >>> refiner = dict(type='HVBiLSTM', in_channels=768, hidden=192,
        ...                dropout=0.2)
    """

    def __init__(self, in_channels: int, hidden: int = 192,
                 dropout: float = 0.2):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.row = nn.LSTM(in_channels, hidden, batch_first=True,
                           bidirectional=True)
        self.col = nn.LSTM(in_channels, hidden, batch_first=True,
                           bidirectional=True)
        self.proj = nn.Identity() if 4 * hidden == in_channels else \
            nn.Linear(4 * hidden, in_channels)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) -> (B, C, h, w)."""
        b, c, h, w = x.shape
        x = self.drop(x.permute(0, 2, 3, 1))  # (B, h, w, C)
        rows = self.row(x.reshape(b * h, w, c))[0].view(b, h, w, -1)
        cols = self.col(x.transpose(1, 2).reshape(b * w, h, c))[0]
        cols = cols.view(b, w, h, -1).transpose(1, 2)
        out = self.proj(torch.cat([rows, cols], dim=-1))
        return out.permute(0, 3, 1, 2).contiguous()


@MODELS.register_module()
class PatchClassifierHead(BaseModule):
    """APC's patch classifier: optional HV-BiLSTM, bias-free linear to K+1
    classes (background first), per-patch softmax, adaptive-K pooling.

    Args:
        in_channels (int): Token dimension C.
        num_classes (int): Foreground classes K (the head predicts K+1).
        refiner (dict, optional): e.g. ``dict(type='HVBiLSTM', hidden=192)``
            (``in_channels`` is filled in).
        pooling (dict): :class:`AdaptiveKPooling` arguments.
        loss_weight_l2 (float): Weight of ``||W||^2`` (``loss_l2``).
            Default 0.01.

    Example:
        >>> patch_head = dict(
        ...     type='PatchClassifierHead', in_channels=768, num_classes=20,
        ...     refiner=dict(type='HVBiLSTM', hidden=192, dropout=0.2),
        ...     pooling=dict(mode='akp', k_max=6, delta=0.2))
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 refiner: Optional[dict] = None,
                 pooling: dict = dict(),
                 loss_weight_l2: float = 0.01,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.refiner = None
        if refiner is not None:
            refiner = dict(refiner)
            refiner.setdefault('in_channels', in_channels)
            self.refiner = MODELS.build(refiner)
        self.classifier = nn.Linear(in_channels, num_classes + 1, bias=False)
        nn.init.normal_(self.classifier.weight, std=1 / math.sqrt(
            in_channels))
        self.pooling = AdaptiveKPooling(**pooling)
        self.loss_weight_l2 = loss_weight_l2

    def forward(self, tokens: Tensor) -> Tuple[Tensor, Tensor]:
        """(B, C, h, w) tokens -> (probs (B, K+1, h, w) per-patch softmax,
        embeddings (B, C, h, w) the refined tokens)."""
        emb = self.refiner(tokens) if self.refiner is not None else tokens
        logits = self.classifier(emb.permute(0, 2, 3, 1))
        return logits.softmax(-1).permute(0, 3, 1, 2), emb

    def image_scores(self, probs: Tensor) -> Tensor:
        """(B, K+1, h, w) -> (B, K+1) pooled image scores in [0, 1]."""
        return self.pooling(probs.flatten(2).transpose(1, 2))

    def loss(self, probs: Tensor, img_labels: Tensor) -> Dict[str, Tensor]:
        """``loss_cls``: BCE of the pooled scores against ``[1; y]``
        (background always present); ``loss_l2``: classifier L2."""
        target = torch.cat([img_labels.new_ones(img_labels.shape[0], 1),
                            img_labels], dim=1)
        scores = self.image_scores(probs).clamp(1e-6, 1 - 1e-6)
        return dict(
            loss_cls=F.binary_cross_entropy(scores, target),
            loss_l2=self.loss_weight_l2 *
            self.classifier.weight.pow(2).sum())
