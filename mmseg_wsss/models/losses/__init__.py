from .balanced_ce_loss import BalancedCrossEntropyLoss, balanced_cross_entropy
from .cosa_losses import ContrastiveSeparationLoss, SegToCAMLoss
from .multilabel_loss import MultiLabelSoftMarginLoss

__all__ = [
    'BalancedCrossEntropyLoss', 'balanced_cross_entropy',
    'MultiLabelSoftMarginLoss', 'SegToCAMLoss', 'ContrastiveSeparationLoss'
]
