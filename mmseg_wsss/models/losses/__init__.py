from .acr_loss import ACRLoss, hflip_token_permutation
from .balanced_ce_loss import BalancedCrossEntropyLoss, balanced_cross_entropy
from .cosa_losses import ContrastiveSeparationLoss, SegToCAMLoss
from .dice_loss import WeCLIPDiceLoss, weclip_dice_loss
from .multilabel_loss import MultiLabelSoftMarginLoss
from .pcl_loss import PatchContrastiveLoss

__all__ = [
    'ACRLoss', 'hflip_token_permutation', 'PatchContrastiveLoss',
    'BalancedCrossEntropyLoss', 'balanced_cross_entropy',
    'MultiLabelSoftMarginLoss', 'SegToCAMLoss', 'ContrastiveSeparationLoss',
    'WeCLIPDiceLoss', 'weclip_dice_loss'
]
