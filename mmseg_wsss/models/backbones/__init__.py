from .vit import WSSSViT, convert_timm_vit, resize_pos_embed

__all__ = ['WSSSViT', 'convert_timm_vit', 'resize_pos_embed']
