from .base import WSSSBaseSegmentor
from .cam_segmentor import CAMSegmentor

__all__ = ['WSSSBaseSegmentor', 'CAMSegmentor']
