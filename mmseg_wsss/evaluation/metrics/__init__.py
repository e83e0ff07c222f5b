from .label_masked_iou_metric import LabelMaskedIoUMetric
from .pseudo_mask_metric import (PseudoMaskMetric, confusion_own_background,
                                 confusion_per_threshold, iou_from_confusion)
from .subset_metric import SubsetMetric

__all__ = [
    'PseudoMaskMetric', 'LabelMaskedIoUMetric', 'SubsetMetric',
    'confusion_per_threshold', 'confusion_own_background', 'iou_from_confusion'
]
