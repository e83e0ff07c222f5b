from .apc import APC
from .base import WSSSBaseSegmentor, image_labels_known
from .cam_segmentor import CAMSegmentor
from .clip_es import CLIPES
from .cosa import CoSA
from .excel import ExCEL, load_attribute_bank
from .weclip import WeCLIP
from .weclip_plus import WeCLIPPlus

__all__ = [
    'WSSSBaseSegmentor', 'image_labels_known', 'CAMSegmentor', 'CoSA', 'APC',
    'CLIPES', 'WeCLIP', 'WeCLIPPlus', 'ExCEL', 'load_attribute_bank'
]
