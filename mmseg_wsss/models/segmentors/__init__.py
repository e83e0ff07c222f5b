from .apc import APC
from .base import WSSSBaseSegmentor, image_labels_known
from .cam_segmentor import CAMSegmentor
from .cosa import CoSA

__all__ = [
    'WSSSBaseSegmentor', 'image_labels_known', 'CAMSegmentor', 'CoSA', 'APC'
]
