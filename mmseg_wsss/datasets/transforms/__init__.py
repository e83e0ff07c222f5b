from .augment import (PHOTOMETRIC_OPS, RandomCropPad, RandomGaussianBlur,
                      RandomRescale, StrongPhotometricView)
from .formatting import PackWSSSInputs
from .loading import LoadWSSSAnnotations

__all__ = [
    'RandomRescale', 'RandomCropPad', 'RandomGaussianBlur',
    'StrongPhotometricView', 'PHOTOMETRIC_OPS', 'PackWSSSInputs',
    'LoadWSSSAnnotations'
]
