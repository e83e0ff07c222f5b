from .transforms import *  # noqa: F401,F403
from .toy import TOY_CLASSES, WSSSToyDataset, make_toy_voc
from .wsss_dataset import (COCO_CLASSES, WSSSCOCODataset, WSSSDataset,
                           WSSSVOCDataset, check_label_vector,
                           labels_from_mask, load_cls_labels, save_cls_labels,
                           voc_palette)

__all__ = [
    'WSSSDataset', 'WSSSVOCDataset', 'WSSSCOCODataset', 'COCO_CLASSES',
    'labels_from_mask', 'load_cls_labels', 'check_label_vector',
    'save_cls_labels',
    'voc_palette', 'TOY_CLASSES', 'make_toy_voc', 'WSSSToyDataset'
]
