from .cam_head import CAMHead, global_pool
from .largefov_head import LargeFOVHead

__all__ = ['CAMHead', 'LargeFOVHead', 'global_pool']
