import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class LargeFOVHead(BaseDecodeHead):
    """DeepLab-LargeFOV decoder used by ToCo/CoSA.

    conv3x3 (dilation 5, C -> channels, no bias) -> ReLU -> conv3x3
    (dilation 5, channels -> channels) -> ReLU -> conv1x1 -> num_classes.

    Args:
        dilation (int): Dilation of both 3x3 convs. Defaults to 5.
        Other arguments as :class:`BaseDecodeHead` (``channels`` = 512 in
        the papers; ``num_classes`` includes background).

    Example:
        >>> decode_head = dict(type='LargeFOVHead', in_channels=768,
        ...                    channels=512, dilation=5, num_classes=21)
    """

    def __init__(self, dilation: int = 5, **kwargs):
        kwargs.setdefault('channels', 512)
        kwargs.setdefault('dropout_ratio', 0.0)
        super().__init__(**kwargs)
        self.convs = nn.Sequential(
            nn.Conv2d(self.in_channels, self.channels, 3, padding=dilation,
                      dilation=dilation, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(self.channels, self.channels, 3, padding=dilation,
                      dilation=dilation),
            nn.ReLU(inplace=True))

    def forward(self, inputs) -> Tensor:
        """(tuple of) (B, C, h, w) -> (B, num_classes, h, w) logits."""
        return self.cls_seg(self.convs(self._transform_inputs(inputs)))
