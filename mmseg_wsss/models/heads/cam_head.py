from typing import Dict

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor


def global_pool(x: Tensor, mode: str = 'gmp', topk_ratio: float = 0.1
                ) -> Tensor:
    """Pool (B, C, h, w) maps to (B, C).

    Args:
        mode (str): ``'gmp'`` global max, ``'gap'`` global average, or
            ``'topk'`` mean of the top ``ceil(topk_ratio * h * w)`` values.
    """
    flat = x.flatten(2)
    if mode == 'gmp':
        return flat.max(dim=-1)[0]
    if mode == 'gap':
        return flat.mean(dim=-1)
    if mode == 'topk':
        k = max(1, int(round(topk_ratio * flat.shape[-1])))
        return flat.topk(k, dim=-1)[0].mean(dim=-1)
    raise ValueError(f"pool must be 'gmp', 'gap' or 'topk', got {mode!r}")


@MODELS.register_module()
class CAMHead(BaseModule):
    """Image classifier whose per-token application is the CAM (§1.2).

    ``classifier = Conv2d(C, K, 1, bias=False)``; the CAM is the classifier
    applied to every token (raw, no ReLU). The image logits pool either the
    features before the classifier (``pool_scores=False``, ToCo/CoSA's
    ``classifier(GMP(tokens))``) or the per-token class scores, i.e. the CAM
    (``pool_scores=True``). The two agree for ``'gap'`` (the classifier is
    linear) but not for ``'gmp'``: a per-channel feature maximum mixes
    channels of different tokens. Backbones with a few high-norm outlier
    channels (DINOv2) make feature-GMP nearly image-independent; pool the
    scores there. ``'topk'`` always pools the scores.

    Args:
        in_channels (int): Token dimension C.
        num_classes (int): Number of foreground classes K.
        pool (str): ``'gmp'`` (default), ``'gap'`` or ``'topk'``.
        pool_scores (bool): Pool the CAM instead of the features. Defaults
            to False.
        topk_ratio (float): Fraction of tokens averaged by ``'topk'``.
        loss_cls (dict): Image-level loss. Defaults to multi-label soft
            margin.

    Example:
        >>> cam_head = dict(type='CAMHead', in_channels=768, num_classes=20,
        ...                 pool='gmp')
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 pool: str = 'gmp',
                 pool_scores: bool = False,
                 topk_ratio: float = 0.1,
                 loss_cls: dict = dict(type='MultiLabelSoftMarginLoss'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        global_pool(torch.zeros(1, 1, 1, 1), pool, topk_ratio)  # validate
        self.num_classes = num_classes
        self.pool = pool
        self.pool_scores = pool_scores or pool == 'topk'
        self.topk_ratio = topk_ratio
        self.classifier = nn.Conv2d(in_channels, num_classes, 1, bias=False)
        self.loss_cls = MODELS.build(loss_cls)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) tokens -> (B, K) image logits."""
        if self.pool_scores:
            return global_pool(self.get_cam(x), self.pool, self.topk_ratio)
        pooled = global_pool(x, self.pool)[:, :, None, None]
        return self.classifier(pooled).flatten(1)

    def get_cam(self, x: Tensor) -> Tensor:
        """(B, C, h, w) tokens -> (B, K, h, w) raw CAM."""
        return self.classifier(x)

    def loss(self, x: Tensor, img_labels: Tensor) -> Dict[str, Tensor]:
        """Returns ``{loss_cls.loss_name: loss}``."""
        return {self.loss_cls.loss_name: self.loss_cls(self(x), img_labels)}
