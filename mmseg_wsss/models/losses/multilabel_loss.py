import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class MultiLabelSoftMarginLoss(nn.Module):
    """Multi-label soft-margin loss for image-level classification.

    ``mean_k [-y_k log sigmoid(z_k) - (1 - y_k) log sigmoid(-z_k)]``, averaged
    over the batch (``F.multilabel_soft_margin_loss``).

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        loss_name (str): Name under which the loss is logged; must start
            with ``loss_``. Defaults to 'loss_cls'.

    Example:
        >>> loss_cls = dict(type='MultiLabelSoftMarginLoss', loss_weight=1.0)
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_cls'):
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, logits: Tensor, labels: Tensor, **kwargs) -> Tensor:
        """
        Args:
            logits (Tensor): (B, K) image-level logits.
            labels (Tensor): (B, K) multi-hot labels.
        """
        return self.loss_weight * F.multilabel_soft_margin_loss(
            logits, labels.to(logits.dtype))

    @property
    def loss_name(self) -> str:
        return self._loss_name
