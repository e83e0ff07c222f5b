"""ViT checkpoint key layouts: detect, convert to and from :class:`WSSSViT`.

:class:`WSSSViT` uses timm's key names. Four layouts are recognised:

========== ============================================ ====================
layout     a block's keys                               where it comes from
========== ============================================ ====================
timm       ``blocks.0.norm1``, ``attn.qkv``, ``ls1.gamma`` timm, our own files
dinov2     timm's names + ``mask_token`` (chunked       the official DINOv2
           ``blocks.0.3.*`` for giant models)           release
mmpretrain ``layers.0.ln1``, ``attn.qkv``,              mmpretrain's model
           ``attn.gamma1.weight``, ``ffn.layers.0.0``   zoo (``backbone.*``)
mmseg      ``layers.0.ln1``, ``attn.attn.in_proj_*``,   mmseg's model zoo
           ``attn.attn.out_proj``, ``ffn.layers.0.0``   (``backbone.*``)
========== ============================================ ====================
"""
import re
from typing import Dict, List, Tuple

from torch import Tensor

LAYOUTS = ('timm', 'dinov2', 'mmpretrain', 'mmseg')

# (WSSSViT / timm pattern, other layout's pattern) per layout; {i} = block
_BLOCK = {
    'mmpretrain': [
        ('norm1', 'ln1'), ('norm2', 'ln2'),
        ('attn.qkv', 'attn.qkv'), ('attn.proj', 'attn.proj'),
        ('ls1.gamma', 'attn.gamma1.weight'),
        ('ls2.gamma', 'ffn.gamma2.weight'),
        ('mlp.fc1', 'ffn.layers.0.0'), ('mlp.fc2', 'ffn.layers.1'),
    ],
    'mmseg': [
        ('norm1', 'ln1'), ('norm2', 'ln2'),
        ('attn.qkv.weight', 'attn.attn.in_proj_weight'),
        ('attn.qkv.bias', 'attn.attn.in_proj_bias'),
        ('attn.proj', 'attn.attn.out_proj'),
        ('mlp.fc1', 'ffn.layers.0.0'), ('mlp.fc2', 'ffn.layers.1'),
    ],
}
_TOP = [('patch_embed.proj', 'patch_embed.projection'), ('norm', 'ln1'),
        ('cls_token', 'cls_token'), ('pos_embed', 'pos_embed')]
_WRAPPERS = ('module.', 'model.', 'backbone.', 'encoder.')


def unwrap(state_dict: Dict[str, Tensor],
           prefix: str = '') -> Dict[str, Tensor]:
    """The backbone's tensors of a checkpoint: the ``state_dict`` / ``model``
    entry, the keys under ``prefix`` (if given), wrapper prefixes
    (``module.``, ``backbone.``, ...) stripped; other parts of a full model
    (``decode_head.*``, ``head.*``) are dropped when a ``backbone.`` prefix
    marks the backbone."""
    for key in ('state_dict', 'model', 'module'):
        if key in state_dict and isinstance(state_dict[key], dict):
            state_dict = state_dict[key]
    if prefix:
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items()
                      if k.startswith(prefix)}
    if any(k.startswith(('backbone.', 'module.backbone.'))
           for k in state_dict):
        state_dict = {k: v for k, v in state_dict.items()
                      if k.startswith(('backbone.', 'module.backbone.'))}
    out = {}
    for k, v in state_dict.items():
        changed = True
        while changed:
            changed = False
            for p in _WRAPPERS:
                if k.startswith(p):
                    k, changed = k[len(p):], True
        out[k] = v
    return out


def detect_layout(state_dict: Dict[str, Tensor]) -> str:
    """One of :data:`LAYOUTS` for an unwrapped ViT state dict.

    Raises:
        ValueError: when the keys are no ViT of a known layout.
    """
    keys = set(state_dict)
    if any(k.endswith('attn.attn.in_proj_weight') for k in keys):
        return 'mmseg'
    if any(re.match(r'layers\.\d+\.attn\.qkv\.weight$', k) for k in keys):
        return 'mmpretrain'
    if any(re.match(r'blocks\.\d+\.(\d+\.)?norm1\.weight$', k)
           for k in keys):
        return 'dinov2' if 'mask_token' in keys or any(
            re.match(r'blocks\.\d+\.\d+\.', k) for k in keys) else 'timm'
    sample = ', '.join(sorted(keys)[:6])
    raise ValueError('not a ViT checkpoint of a known layout (timm, DINOv2, '
                     f'mmpretrain, mmseg); its keys begin {sample}')


def _rename(key: str, pairs: List[Tuple[str, str]], block_from: str,
            block_to: str, reverse: bool) -> str:
    m = re.match(rf'{block_from}\.(\d+)\.(.*)$', key)
    if m:
        i, rest = m.groups()
        for a, b in pairs:
            src, dst = (b, a) if not reverse else (a, b)
            if rest == src or rest.startswith(src + '.'):
                return f'{block_to}.{i}.{dst}{rest[len(src):]}'
        return f'{block_to}.{i}.{rest}'
    for a, b in _TOP:
        src, dst = (b, a) if not reverse else (a, b)
        if key == src or key.startswith(src + '.'):
            return dst + key[len(src):]
    return key


def to_timm(state_dict: Dict[str, Tensor],
            layout: str) -> Dict[str, Tensor]:
    """Rename an unwrapped state dict of ``layout`` to WSSSViT / timm
    keys."""
    if layout == 'timm':
        return dict(state_dict)
    if layout == 'dinov2':
        out = {}
        for k, v in state_dict.items():
            if k == 'mask_token':
                continue
            out[re.sub(r'^blocks\.\d+\.(\d+)\.', r'blocks.\1.', k)] = v
        return out
    pairs = _BLOCK[layout]
    return {_rename(k, pairs, 'layers', 'blocks', reverse=False): v
            for k, v in state_dict.items()}


def from_timm(state_dict: Dict[str, Tensor],
              layout: str) -> Dict[str, Tensor]:
    """WSSSViT / timm keys to ``layout`` (what that library's ViT loads;
    ``dinov2`` adds a zero ``mask_token`` as the official files have)."""
    if layout == 'timm':
        return dict(state_dict)
    if layout == 'dinov2':
        out = dict(state_dict)
        out['mask_token'] = state_dict['cls_token'].new_zeros(
            1, state_dict['cls_token'].shape[-1])
        return out
    if layout == 'mmseg' and any('ls1.gamma' in k for k in state_dict):
        raise ValueError('mmseg\'s VisionTransformer has no LayerScale: a '
                         'ViT with ls1/ls2 (DINOv2) has no mmseg layout')
    pairs = _BLOCK[layout]
    return {_rename(k, pairs, 'blocks', 'layers', reverse=True): v
            for k, v in state_dict.items()}
