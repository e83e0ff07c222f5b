from .adapter import (WSSSDecodeInputs, WSSSOutputsMixin, probe_outputs,
                      build_wsss_backbone, preserve_bn_stats,
                      require_attention)
from .clip_vit import CLIPViT, QuickGELU, convert_clip_visual
from .vit import SharedDropPath, WSSSViT, convert_timm_vit, resize_pos_embed

__all__ = [
    'WSSSViT', 'convert_timm_vit', 'resize_pos_embed', 'build_wsss_backbone',
    'require_attention', 'preserve_bn_stats', 'WSSSOutputsMixin',
    'WSSSDecodeInputs', 'SharedDropPath', 'CLIPViT', 'QuickGELU',
    'probe_outputs', 'convert_clip_visual'
]
