import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def weclip_dice_loss(logits: Tensor, label: Tensor,
                     ignore_index: int = 255) -> Tensor:
    """WeCLIP+'s Dice loss (``clip.md`` §3): ``1 - mean_c 2 sum p y /
    sum (p + y)`` over the batch, ``p`` the softmax; ignored pixels take an
    extra one-hot channel that is dropped (they count in neither sum's
    ``y``; their ``p`` still counts in the denominator, as the reference).

    Args:
        logits (Tensor): (B, C, H, W).
        label (Tensor): (B, H, W) in [0, C) or ``ignore_index``.
    """
    c = logits.shape[1]
    prob = logits.softmax(1)
    lab = label.clone()
    lab[lab == ignore_index] = c
    onehot = F.one_hot(lab, c + 1)[..., :c].permute(0, 3, 1, 2).to(prob)
    inter = (prob * onehot).sum((0, 2, 3))
    denom = (prob + onehot).sum((0, 2, 3))
    return 1 - (2 * inter / denom.clamp(min=1e-12)).mean()


@MODELS.register_module()
class WeCLIPDiceLoss(torch.nn.Module):
    """Registered :func:`weclip_dice_loss` (an mmseg ``loss_decode``).

    Args:
        loss_weight (float): 1.0. loss_name (str): ``'loss_dice'``.

    Example:
        >>> loss_dice = dict(type='WeCLIPDiceLoss', loss_weight=1.0)
    """

    def __init__(self, loss_weight: float = 1.0, ignore_index: int = 255,
                 loss_name: str = 'loss_dice'):
        super().__init__()
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def forward(self, logits, label, weight=None, ignore_index=None,
                **kwargs):
        return self.loss_weight * weclip_dice_loss(
            logits, label, self.ignore_index if ignore_index is None
            else ignore_index)

    @property
    def loss_name(self) -> str:
        return self._loss_name
