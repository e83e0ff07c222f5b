"""A ViT that exposes what WSSS needs (``methods.md`` §1.1).

Module names follow timm's layout (``cls_token``, ``pos_embed``,
``patch_embed.proj``, ``blocks.N.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,
mlp.fc1,mlp.fc2,ls2.gamma}``, ``norm``), so timm / DINOv2 checkpoints load
with a key filter and a position-embedding resize (:func:`convert_timm_vit`).
"""
import math
from contextlib import contextmanager
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

from ...utils.checkpoint import load_state_dict_file
from .vit_layouts import detect_layout, to_timm, unwrap


class DropPath(nn.Module):
    """Stochastic depth per sample.

    With :class:`SharedDropPath` the masks a forward draws are recorded
    and a second forward replays them, so two views of the same batch
    (e.g. an image and its flip for ACR) drop the same paths."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p
        self._record = None  # list while recording
        self._replay = None  # iterator while replaying

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        if self._replay is not None:
            keep = next(self._replay, None)
            if keep is None or keep.shape[0] != x.shape[0]:
                raise RuntimeError(
                    'SharedDropPath: the replayed forward uses drop path '
                    'more often, or on another batch size, than the '
                    'recorded one')
            return x * keep.to(x.dtype) / (1 - self.p)
        keep = x.new_empty((x.shape[0], ) + (1, ) * (x.dim() - 1))
        keep.bernoulli_(1 - self.p)
        if self._record is not None:
            self._record.append(keep)
        return x * keep / (1 - self.p)


class SharedDropPath:
    """Record the drop-path masks of the :class:`DropPath` modules of
    ``module`` during one forward and replay them in later forwards.

    Example::

        dp = SharedDropPath(vit)
        with dp.record():
            feats = vit.forward_wsss(x)
        with dp.replay():
            feats_flip = vit.forward_wsss(x.flip(-1))  # same masks

    A per-sample mask does not depend on the pixels, so the flipped view of
    sample i drops exactly the paths sample i dropped.
    """

    def __init__(self, module: nn.Module):
        self.mods = [m for m in module.modules() if isinstance(m, DropPath)]
        self.masks = {}

    @contextmanager
    def record(self):
        for m in self.mods:
            m._record = []
        try:
            yield self
        finally:
            for m in self.mods:
                self.masks[m] = m._record
                m._record = None

    @contextmanager
    def replay(self):
        for m in self.mods:
            m._replay = iter(self.masks.get(m, []))
        try:
            yield self
        finally:
            for m in self.mods:
                m._replay = None


class LayerScale(nn.Module):

    def __init__(self, dims: int, init_value: float):
        super().__init__()
        self.gamma = nn.Parameter(init_value * torch.ones(dims))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Attention(nn.Module):

    def __init__(self, dims: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dims % num_heads:
            raise ValueError(f'embed_dims {dims} is not divisible by '
                             f'num_heads {num_heads}')
        self.num_heads = num_heads
        self.scale = (dims // num_heads)**-0.5
        self.qkv = nn.Linear(dims, dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(dims, dims)

    def forward(self, x: Tensor, with_attn: bool = False):
        """Returns ``(out, attn)``; ``attn`` is the (B, heads, N, N)
        post-softmax attention when ``with_attn`` else None (then the fused
        kernel is used)."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads,
                                      c // self.num_heads).permute(
                                          2, 0, 3, 1, 4)
        if with_attn:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = attn.softmax(dim=-1)
            out = attn @ v
        else:
            attn = None
            out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(b, n, c)
        return self.proj(out), attn


class Mlp(nn.Module):

    def __init__(self, dims: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dims, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):

    def __init__(self,
                 dims: int,
                 num_heads: int,
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 layer_scale_init: Optional[float] = None,
                 drop_path: float = 0.0,
                 norm_eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dims, eps=norm_eps)
        self.attn = Attention(dims, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dims, eps=norm_eps)
        self.mlp = Mlp(dims, int(dims * mlp_ratio))
        if layer_scale_init is not None:
            self.ls1 = LayerScale(dims, layer_scale_init)
            self.ls2 = LayerScale(dims, layer_scale_init)
        else:
            self.ls1 = self.ls2 = nn.Identity()
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor, with_attn: bool = False):
        y, attn = self.attn(self.norm1(x), with_attn)
        x = x + self.drop_path(self.ls1(y))
        x = x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))
        return x, attn


class PatchEmbed(nn.Module):

    def __init__(self, patch_size: int, in_channels: int, dims: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dims, patch_size, patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


def resize_pos_embed(pos_embed: Tensor,
                     src_hw: Sequence[int],
                     dst_hw: Sequence[int],
                     num_extra_tokens: int = 1) -> Tensor:
    """Bicubically resize a (1, extra + h*w, C) position embedding."""
    if tuple(src_hw) == tuple(dst_hw):
        return pos_embed
    extra = pos_embed[:, :num_extra_tokens]
    grid = pos_embed[:, num_extra_tokens:]
    c = grid.shape[-1]
    grid = grid.reshape(1, src_hw[0], src_hw[1], c).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=tuple(dst_hw), mode='bicubic',
                         align_corners=False).to(pos_embed.dtype)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, c)
    return torch.cat([extra, grid], dim=1)


_DROPPED_PREFIXES = ('head.', 'fc_norm.', 'head_drop.', 'pre_logits.')


def convert_timm_vit(state_dict: Dict[str, Tensor],
                     pos_hw: Optional[Sequence[int]] = None
                     ) -> Dict[str, Tensor]:
    """Convert a timm-layout ViT state dict to :class:`WSSSViT` keys.

    Strips wrapper prefixes (``module.``, ``model.``, ``backbone.``,
    ``state_dict``), drops classifier keys (``head.*``, ``fc_norm.*``),
    resizes ``pos_embed`` to ``pos_hw`` and splits fused LayerScale names
    (``ls1.weight`` -> ``ls1.gamma``).

    Args:
        state_dict (dict): timm-style state dict (or a checkpoint holding one
            under ``state_dict`` / ``model``).
        pos_hw (Sequence[int], optional): The target's position grid
            (h, w); None keeps the checkpoint's grid.
    """
    for key in ('state_dict', 'model', 'module'):
        if key in state_dict and isinstance(state_dict[key], dict):
            state_dict = state_dict[key]
    out = {}
    for k, v in state_dict.items():
        for prefix in ('module.', 'model.', 'backbone.', 'encoder.'):
            if k.startswith(prefix):
                k = k[len(prefix):]
        if k.startswith(_DROPPED_PREFIXES):
            continue
        if k.endswith(('ls1.weight', 'ls2.weight')):
            k = k[:-len('weight')] + 'gamma'
        out[k] = v
    if 'pos_embed' in out and pos_hw is not None:
        pe = out['pos_embed']
        n = pe.shape[1] - 1
        side = int(math.isqrt(n))
        if side * side != n:
            raise ValueError(f'pos_embed with {n} patch positions is not a '
                             'square grid; cannot infer its size')
        out['pos_embed'] = resize_pos_embed(pe, (side, side), pos_hw)
    return out


@MODELS.register_module()
class WSSSViT(BaseModule):
    """Vision Transformer for weakly supervised segmentation.

    ``forward`` follows mmseg's backbone contract (a tuple of (B, C, h, w)
    maps, one per ``out_indices``) so any mmseg decode head can sit on it.
    :meth:`forward_wsss` returns everything WSSS methods use.

    Args:
        img_size (int): Size the position embedding is defined for.
        patch_size (int): 16 (ViT-B/16) or 14 (DINOv2).
        embed_dims (int), num_layers (int), num_heads (int),
        mlp_ratio (float), qkv_bias (bool): The usual ViT sizes.
        layer_scale_init (float, optional): LayerScale init value (DINOv2
            uses it); None disables LayerScale.
        drop_path_rate (float): Stochastic depth, linear over blocks.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        out_indices (Sequence[int]): Blocks whose tokens ``forward`` returns
            as maps. Defaults to (-1, ).
        final_norm (bool): Apply the final LayerNorm to the last block's
            output (the one in ``out_indices`` and ``tokens``).
        aux_layer (int): Block whose (un-normalised) tokens are the aux
            output (CoSA/ToCo use -3 = block 9 of 12).
        freeze_pos_embed (bool): Do not train ``pos_embed`` (CoSA/ToCo).
        frozen_stages (int): Freeze the patch/position embeddings and the
            first ``frozen_stages`` blocks (all of them: the final norm too);
            -1 (default) trains everything.
        pretrained (str, optional): timm-layout checkpoint loaded strictly
            by :meth:`init_weights`.

    Example:
        >>> backbone = dict(type='WSSSViT', embed_dims=768, num_layers=12,
        ...                 num_heads=12, drop_path_rate=0.1,
        ...                 pretrained='pretrain/vit_base_patch16_224.pth')
    """

    #: gives attention maps and the class token (ACR, GETAM)
    has_attention = True

    def wsss_channels(self, which: str) -> int:
        """Channels of the ``'cam'`` / ``'aux'`` tokens."""
        return self.embed_dims

    @property
    def wsss_stride(self) -> int:
        """Input multiple of the WSSS contract: the patch size."""
        return self.patch_size

    def __init__(self,
                 img_size: int = 224,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 embed_dims: int = 768,
                 num_layers: int = 12,
                 num_heads: int = 12,
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 layer_scale_init: Optional[float] = None,
                 drop_path_rate: float = 0.0,
                 norm_eps: float = 1e-6,
                 out_indices: Sequence[int] = (-1, ),
                 final_norm: bool = True,
                 aux_layer: int = -3,
                 freeze_pos_embed: bool = False,
                 frozen_stages: int = -1,
                 pretrained: Optional[str] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.patch_size = patch_size
        self.embed_dims = embed_dims
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.pos_hw = (img_size // patch_size, img_size // patch_size)
        self.out_indices = [self._layer_index(i) for i in out_indices]
        self.aux_layer = self._layer_index(aux_layer)
        self.final_norm = final_norm
        self.pretrained = pretrained

        self.patch_embed = PatchEmbed(patch_size, in_channels, embed_dims)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, 1 + self.pos_hw[0] * self.pos_hw[1], embed_dims),
            requires_grad=not freeze_pos_embed)
        dpr = torch.linspace(0, drop_path_rate, num_layers).tolist()
        self.blocks = nn.ModuleList([
            Block(embed_dims, num_heads, mlp_ratio, qkv_bias,
                  layer_scale_init, dpr[i], norm_eps)
            for i in range(num_layers)
        ])
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.frozen_stages = frozen_stages
        self._freeze()

    def _freeze(self):
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed, *self.blocks[:self.frozen_stages]]
        if self.frozen_stages >= self.num_layers:
            frozen.append(self.norm)
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False
        self.cls_token.requires_grad = False
        self.pos_embed.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze()  # frozen parts stay in eval mode (no drop path)
        return self

    def _layer_index(self, i: int) -> int:
        j = i + self.num_layers if i < 0 else i
        if not 0 <= j < self.num_layers:
            raise ValueError(f'block index {i} out of range for '
                             f'{self.num_layers} blocks')
        return j

    def init_weights(self):
        init = self.init_cfg if isinstance(self.init_cfg, dict) else {}
        if init.get('type') == 'Pretrained':
            # mmengine's Pretrained init would load non-strictly and convert
            # nothing: WSSSViT loads it itself
            if self.pretrained is not None:
                raise ValueError('give WSSSViT either pretrained= or '
                                 "init_cfg=dict(type='Pretrained'), not both")
            self.load_pretrained(init['checkpoint'],
                                 prefix=init.get('prefix', ''))
            self._is_init = True
            return
        if self.pretrained is None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            nn.init.trunc_normal_(self.cls_token, std=0.02)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            super().init_weights()
            return
        self.load_pretrained(self.pretrained)

    def load_pretrained(self, path: str, strict: bool = True,
                        prefix: str = ''):
        """Load ViT weights in timm, DINOv2, mmpretrain or mmseg key layout
        from a local file (``.pth``/``.bin``/``.safetensors``) or a URL
        (mmengine's ``CheckpointLoader``: ``https://``, ``open-mmlab://``,
        ...), detecting the layout, converting it and loading strictly.

        Args:
            path (str): File or URL.
            strict (bool): Fail on missing / unexpected keys.
            prefix (str): Only keys under it (mmengine's ``Pretrained``
                ``prefix``, e.g. ``'backbone.'``).

        Raises:
            RuntimeError: naming the detected layout and the missing /
                unexpected keys when the checkpoint does not fit this
                architecture.
        """
        from mmengine.runner import CheckpointLoader
        if path.endswith('.safetensors') or '://' not in path:
            raw = load_state_dict_file(path)
        else:
            raw = CheckpointLoader.load_checkpoint(path, map_location='cpu')
        state = unwrap(raw, prefix)
        layout = detect_layout(state)
        state = convert_timm_vit(to_timm(state, layout), self.pos_hw)
        if layout == 'mmseg' and 'patch_embed.proj.bias' not in state and \
                'patch_embed.proj.weight' in state:
            # mmseg's ViT can run without a patch-embedding bias
            state['patch_embed.proj.bias'] = self.patch_embed.proj.bias \
                .detach().new_zeros(self.embed_dims)
        missing, unexpected = self.load_state_dict(state, strict=False)
        if strict and (missing or unexpected):
            scale = isinstance(self.blocks[0].ls1, LayerScale)
            raise RuntimeError(
                f'{path} ({layout} layout) does not fit WSSSViT(patch_size='
                f'{self.patch_size}, embed_dims={self.embed_dims}, '
                f'num_layers={self.num_layers}, layer scale '
                f'{"on" if scale else "off"}): missing keys {missing}, '
                f'unexpected keys {unexpected}')
        print_log(f'WSSSViT: loaded {len(state)} tensors from {path} '
                  f'({layout} layout)', logger='current')

    def _embed(self, x: Tensor) -> Tensor:
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(
                f'input size {tuple(x.shape[-2:])} is not a multiple of the '
                f'patch size {self.patch_size}; resize or pad the input '
                '(the WSSS segmentors do this in inference)')
        x = self.patch_embed(x)
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        pos = resize_pos_embed(self.pos_embed, self.pos_hw, (h, w))
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + pos, (h, w)

    @staticmethod
    def _to_map(tokens: Tensor, hw) -> Tensor:
        """(B, 1 + h*w, C) -> (B, C, h, w), dropping the class token."""
        b, _, c = tokens.shape
        return tokens[:, 1:].transpose(1, 2).reshape(b, c, *hw)

    def forward_wsss(self,
                     x: Tensor,
                     with_attn: Union[bool, str] = False,
                     attn_blocks: Optional[Sequence[int]] = None) -> dict:
        """Run the ViT and return the WSSS outputs.

        Args:
            x (Tensor): (B, 3, H, W), H and W multiples of the patch size.
            with_attn (bool | str): False; True or ``'mean'`` for the
                head-averaged attention of every block; ``'heads'`` for the
                per-head attention (B, heads, N+1, N+1) of every block.
            attn_blocks (Sequence[int], optional): With ``with_attn``, the
                blocks (negative indices allowed) whose attention is
                materialised; the others run the fused kernel and their
                entry in ``attns`` is None. Default every block.

        Returns:
            dict:
            - ``outs`` (tuple[Tensor]): (B, C, h, w) per ``out_indices``.
            - ``tokens`` (Tensor): (B, C, h, w) final tokens after the final
              norm.
            - ``aux_tokens`` (Tensor): (B, C, h, w) tokens of ``aux_layer``
              before any norm.
            - ``cls_token`` (Tensor): (B, C) final class token (normed).
            - ``attns`` (list[Tensor] | None): per block attention.
            - ``grid`` (tuple[int, int]): (h, w).
        """
        x, hw = self._embed(x)
        outs, attns = [], [] if with_attn else None
        read = None if attn_blocks is None else \
            {self._layer_index(i) for i in attn_blocks}
        aux = None
        for i, blk in enumerate(self.blocks):
            want = bool(with_attn) and (read is None or i in read)
            x, attn = blk(x, with_attn=want)
            if with_attn:
                attns.append(None if attn is None else attn
                             if with_attn == 'heads' else attn.mean(1))
            if i == self.aux_layer:
                aux = x
            if i == self.num_layers - 1 and self.final_norm:
                x = self.norm(x)
            if i in self.out_indices:
                outs.append(self._to_map(x, hw))
        return dict(
            outs=tuple(outs),
            tokens=self._to_map(x, hw),
            aux_tokens=self._to_map(aux, hw),
            cls_token=x[:, 0],
            attns=attns,
            grid=hw)

    def forward(self, x: Tensor) -> tuple:
        """mmseg backbone contract: tuple of (B, C, h, w) maps."""
        return self.forward_wsss(x)['outs']
