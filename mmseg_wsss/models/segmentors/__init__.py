from .apc import APC
from .base import WSSSBaseSegmentor
from .cam_segmentor import CAMSegmentor
from .cosa import CoSA

__all__ = ['WSSSBaseSegmentor', 'CAMSegmentor', 'CoSA', 'APC']
