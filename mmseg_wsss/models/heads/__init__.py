from .cam_head import CAMHead, global_pool
from .cls_token_head import ClsTokenHead
from .largefov_head import LargeFOVHead
from .patch_classifier_head import (AdaptiveKPooling, HVBiLSTM,
                                    PatchClassifierHead)
from .weclip_head import WeCLIPHead, WeCLIPPlusHead

__all__ = [
    'CAMHead', 'ClsTokenHead', 'LargeFOVHead', 'global_pool',
    'AdaptiveKPooling', 'HVBiLSTM', 'PatchClassifierHead', 'WeCLIPHead',
    'WeCLIPPlusHead'
]
