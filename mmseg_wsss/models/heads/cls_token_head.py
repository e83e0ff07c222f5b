from typing import Dict

import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class ClsTokenHead(BaseModule):
    """Image classifier on the ViT class token (ACR / GETAM, ``methods.md``
    §4): ``Linear(C, K)``. Its class scores are what the class-token-gradient
    localiser (:func:`class_token_gradient_map`) differentiates.

    Args:
        in_channels (int): Class-token dimension C.
        num_classes (int): Number of foreground classes K.
        bias (bool): Linear bias. Default True.
        loss_cls (dict): Image-level loss; default multi-label soft margin
            named ``loss_cls_token``.

    Example:
        >>> token_head = dict(type='ClsTokenHead', in_channels=768,
        ...                   num_classes=20)
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 bias: bool = True,
                 loss_cls: dict = dict(
                     type='MultiLabelSoftMarginLoss',
                     loss_name='loss_cls_token'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.fc = nn.Linear(in_channels, num_classes, bias=bias)
        self.loss_cls = MODELS.build(loss_cls)

    def forward(self, cls_token: Tensor) -> Tensor:
        """(B, C) class token -> (B, K) logits."""
        return self.fc(cls_token)

    def loss(self, cls_token: Tensor, img_labels: Tensor
             ) -> Dict[str, Tensor]:
        return {self.loss_cls.loss_name: self.loss_cls(self(cls_token),
                                                       img_labels)}
