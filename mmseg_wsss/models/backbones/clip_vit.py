"""CLIP's image tower as a WSSS backbone (``clip.md`` §0.1–0.3).

:class:`CLIPViT` is :class:`WSSSViT` with CLIP's differences -- a patch
embedding without bias, ``ln_pre`` after the position embedding, QuickGELU
MLPs, LayerNorm eps 1e-5, ``ln_post`` on the final tokens and the image
projection ``proj`` for the pooled embedding -- so everything that runs on
WSSSViT runs on CLIP: the CAM baseline, CoSA, APC, ACR and GETAM (attention
maps and the class token), and the CLIP methods' per-block tokens and
head-averaged (or summed) attention.

Checkpoints (auto-detected, through the project's safe loader): OpenAI
``clip`` / open_clip state dicts (``visual.conv1.weight``, ...; with or
without the ``visual.`` prefix), Hugging Face ``CLIPModel`` /
``CLIPVisionModelWithProjection`` (``vision_model.*`` +
``visual_projection.weight``). OpenAI's TorchScript archives
(``ViT-B-16.pt``) hold TorchScript code and are read only when trusted
(``--trust-checkpoint`` / ``WSSS_TRUSTED_CHECKPOINTS``); better, convert
it once to a plain state dict (``torch.save(torch.jit.load(path,
map_location='cpu').state_dict(), 'clip_vitb16.pth')``), which then loads
with the safe loader.
"""
import os.path as osp
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmseg.registry import MODELS
from torch import Tensor

from ...utils.checkpoint import is_trusted, load_state_dict_file
from .vit import WSSSViT

#: the two CLIP image towers the CLIP WSSS methods use
CLIP_ARCHS = {
    'ViT-B/16': dict(patch_size=16, embed_dims=768, num_layers=12,
                     num_heads=12, proj_dims=512),
    'ViT-L/14': dict(patch_size=14, embed_dims=1024, num_layers=24,
                     num_heads=16, proj_dims=768),
}


class QuickGELU(nn.Module):
    """CLIP's activation ``x * sigmoid(1.702 x)``."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


def clip_layout(state: Dict[str, Tensor]) -> Optional[str]:
    """``'openai'`` (OpenAI / open_clip visual keys), ``'hf'`` (Hugging
    Face ``CLIPModel``) or None."""
    if any(k.endswith('conv1.weight') and 'resblocks' not in k
           for k in state) and any('transformer.resblocks.' in k
                                   for k in state):
        return 'openai'
    if any(k.startswith(('vision_model.', 'clip.vision_model.'))
           for k in state):
        return 'hf'
    return None


def convert_clip_visual(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """A CLIP checkpoint's image tower in :class:`CLIPViT` keys.

    Raises:
        ValueError: when the state dict is in no CLIP layout.
    """
    layout = clip_layout(state)
    out = {}
    if layout == 'openai':
        pre = 'visual.' if any(k.startswith('visual.') for k in state) \
            else ''
        vis = {k[len(pre):]: v for k, v in state.items()
               if k.startswith(pre)}
        out['patch_embed.proj.weight'] = vis['conv1.weight']
        out['cls_token'] = vis['class_embedding'].reshape(1, 1, -1)
        out['pos_embed'] = vis['positional_embedding'][None]
        for a, b in (('ln_pre', 'ln_pre'), ('ln_post', 'norm')):
            out[f'{b}.weight'] = vis[f'{a}.weight']
            out[f'{b}.bias'] = vis[f'{a}.bias']
        out['proj'] = vis['proj']
        i = 0
        while f'transformer.resblocks.{i}.ln_1.weight' in vis:
            src, dst = f'transformer.resblocks.{i}.', f'blocks.{i}.'
            for a, b in (('ln_1', 'norm1'), ('ln_2', 'norm2'),
                         ('attn.in_proj', 'attn.qkv'),
                         ('attn.out_proj', 'attn.proj'),
                         ('mlp.c_fc', 'mlp.fc1'), ('mlp.c_proj', 'mlp.fc2')):
                sep = '_' if a == 'attn.in_proj' else '.'
                out[dst + b + '.weight'] = vis[src + a + sep + 'weight']
                out[dst + b + '.bias'] = vis[src + a + sep + 'bias']
            i += 1
        return out
    if layout == 'hf':
        pre = 'clip.' if any(k.startswith('clip.') for k in state) else ''
        s = {k[len(pre):]: v for k, v in state.items()}
        emb = 'vision_model.embeddings.'
        out['patch_embed.proj.weight'] = s[emb + 'patch_embedding.weight']
        out['cls_token'] = s[emb + 'class_embedding'].reshape(1, 1, -1)
        out['pos_embed'] = s[emb + 'position_embedding.weight'][None]
        for a, b in (('vision_model.pre_layrnorm', 'ln_pre'),
                     ('vision_model.post_layernorm', 'norm')):
            out[f'{b}.weight'] = s[f'{a}.weight']
            out[f'{b}.bias'] = s[f'{a}.bias']
        out['proj'] = s['visual_projection.weight'].t().contiguous()
        i = 0
        while f'vision_model.encoder.layers.{i}.layer_norm1.weight' in s:
            src, dst = f'vision_model.encoder.layers.{i}.', f'blocks.{i}.'
            for a, b in (('layer_norm1', 'norm1'), ('layer_norm2', 'norm2'),
                         ('self_attn.out_proj', 'attn.proj'),
                         ('mlp.fc1', 'mlp.fc1'), ('mlp.fc2', 'mlp.fc2')):
                out[dst + b + '.weight'] = s[src + a + '.weight']
                out[dst + b + '.bias'] = s[src + a + '.bias']
            for kind in ('weight', 'bias'):
                out[dst + 'attn.qkv.' + kind] = torch.cat([
                    s[f'{src}self_attn.{p}_proj.{kind}'] for p in 'qkv'])
            i += 1
        return out
    raise ValueError('not a CLIP checkpoint: no OpenAI / open_clip '
                     '(visual.conv1.weight, transformer.resblocks.*) or '
                     'Hugging Face (vision_model.*) image-tower keys')


def resize_pos_embed_2d(pos_embed: Tensor, src_hw: Sequence[int],
                        dst_hw: Sequence[int], mode: str) -> Tensor:
    """Resize the (1, 1 + h*w, C) grid part of a position embedding with
    ``mode`` (CLIP-ES / WeCLIP: bilinear, align_corners=False); any grid,
    non-square included."""
    if tuple(src_hw) == tuple(dst_hw):
        return pos_embed
    cls, grid = pos_embed[:, :1], pos_embed[:, 1:]
    c = grid.shape[-1]
    grid = grid.reshape(1, *src_hw, c).permute(0, 3, 1, 2).float()
    kw = dict(align_corners=False) if mode in ('bilinear', 'bicubic') else {}
    grid = F.interpolate(grid, size=tuple(dst_hw), mode=mode, **kw)
    grid = grid.to(pos_embed.dtype).permute(0, 2, 3, 1).reshape(1, -1, c)
    return torch.cat([cls, grid], dim=1)


def read_clip_checkpoint(path: str) -> Dict[str, Tensor]:
    """A CLIP state dict (all towers) from a file or URL, through the safe
    loader; an OpenAI TorchScript archive only when trusted (it holds
    TorchScript code).

    Raises:
        ValueError: naming the file and the opt-in, for an untrusted
            TorchScript archive.
    """
    from mmengine.runner import CheckpointLoader
    if '://' in path and not path.startswith('file://'):
        state = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    else:
        import zipfile
        if osp.isfile(path) and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                jit = any('/code/' in n for n in z.namelist())
            if jit:
                if not is_trusted(path):
                    raise ValueError(
                        f'{path} is a TorchScript archive (OpenAI\'s clip '
                        'release): loading it runs its TorchScript code, so '
                        'it is read only when you trust it: '
                        f'--trust-checkpoint {path} (or '
                        'WSSS_TRUSTED_CHECKPOINTS). Better: convert it once '
                        'to a plain state dict.')
                return torch.jit.load(path, map_location='cpu').state_dict()
        state = load_state_dict_file(path)
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    return state


@MODELS.register_module()
class CLIPViT(WSSSViT):
    """CLIP's image tower (OpenAI / open_clip / Hugging Face weights) with
    the WSSS backbone contract of :class:`WSSSViT`.

    Args:
        arch (str, optional): ``'ViT-B/16'`` or ``'ViT-L/14'`` (sets the
            sizes; explicit ``patch_size`` / ``embed_dims`` / ... win).
        img_size (int | tuple): Grid the position embedding is defined for
            (224 for OpenAI's; a tuple for non-square towers).
        proj_dims (int): Width of the image-text space (512 for B/16).
        pos_interp (str): How the position embedding is resized to other
            grids: ``'bilinear'`` (CLIP-ES / WeCLIP) or ``'bicubic'``.
        pretrained (str, optional): A CLIP checkpoint (path or URL) in any
            layout above.
        Other arguments as :class:`WSSSViT` (``out_indices``,
        ``aux_layer``, ``frozen_stages``: -1 trains everything; the CLIP
        methods freeze all blocks with ``frozen_stages=num_layers``).

    Example:
        >>> backbone = dict(type='CLIPViT', arch='ViT-B/16',
        ...                 pretrained='pretrain/clip_vitb16.pth',
        ...                 frozen_stages=12, out_indices=(-1, ))
    """

    def __init__(self,
                 arch: Optional[str] = 'ViT-B/16',
                 img_size=224,
                 proj_dims: Optional[int] = None,
                 pos_interp: str = 'bilinear',
                 aux_layer: int = -3,
                 **kwargs):
        sizes = dict(CLIP_ARCHS[arch]) if arch else {}
        if arch and arch not in CLIP_ARCHS:
            raise ValueError(f'arch {arch!r}: one of {sorted(CLIP_ARCHS)}')
        proj = proj_dims or sizes.pop('proj_dims', None) or 512
        sizes.pop('proj_dims', None)
        sizes.update({k: v for k, v in kwargs.items() if k in sizes})
        kwargs = {k: v for k, v in kwargs.items() if k not in sizes}
        kwargs.setdefault('norm_eps', 1e-5)
        kwargs.setdefault('qkv_bias', True)
        hw = (img_size, img_size) if isinstance(img_size, int) else \
            tuple(img_size)
        super().__init__(img_size=hw[0], aux_layer=aux_layer, **sizes,
                         **kwargs)
        p = self.patch_size
        self.pos_hw = (hw[0] // p, hw[1] // p)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, 1 + self.pos_hw[0] * self.pos_hw[1],
                        self.embed_dims),
            requires_grad=self.pos_embed.requires_grad)
        self.pos_interp = pos_interp
        self.patch_embed.proj = nn.Conv2d(
            self.patch_embed.proj.in_channels, self.embed_dims, p, p,
            bias=False)
        self.ln_pre = nn.LayerNorm(self.embed_dims,
                                   eps=kwargs['norm_eps'])
        for blk in self.blocks:
            blk.mlp.act = QuickGELU()
        self.proj = nn.Parameter(torch.zeros(self.embed_dims, proj))
        self._freeze()

    def _freeze(self):
        super()._freeze()
        if self.frozen_stages >= 0 and hasattr(self, 'ln_pre'):
            self.ln_pre.eval()
            for prm in self.ln_pre.parameters():
                prm.requires_grad = False
        if self.frozen_stages >= self.num_layers and hasattr(self, 'proj'):
            self.proj.requires_grad = False

    def init_weights(self):
        if self.pretrained is None and not (
                isinstance(self.init_cfg, dict)
                and self.init_cfg.get('type') == 'Pretrained'):
            super().init_weights()
            nn.init.normal_(self.proj, std=self.embed_dims**-0.5)
            return
        super().init_weights()

    def load_pretrained(self, path: str, strict: bool = True,
                        prefix: str = ''):
        """Load a CLIP checkpoint in OpenAI / open_clip / Hugging Face
        layout (the image tower; text keys are ignored) strictly."""
        raw = read_clip_checkpoint(path)
        if prefix:
            raw = {k[len(prefix):]: v for k, v in raw.items()
                   if k.startswith(prefix)}
        if clip_layout(raw) is None and 'ln_pre.weight' in raw and \
                'proj' in raw:
            state = dict(raw)  # already in CLIPViT keys (a converted file)
        else:
            state = convert_clip_visual(raw)
        if state['pos_embed'].shape != self.pos_embed.shape:
            n = state['pos_embed'].shape[1] - 1
            side = int(round(n**0.5))
            state['pos_embed'] = resize_pos_embed_2d(
                state['pos_embed'], (side, side), self.pos_hw,
                self.pos_interp)
        missing, unexpected = self.load_state_dict(state, strict=False)
        if strict and (missing or unexpected):
            raise RuntimeError(
                f'{path} does not fit CLIPViT(patch_size={self.patch_size},'
                f' embed_dims={self.embed_dims}, num_layers='
                f'{self.num_layers}): missing keys {missing}, unexpected '
                f'keys {unexpected}')
        print_log(f'CLIPViT: loaded {len(state)} tensors from {path}',
                  logger='current')

    def _embed(self, x: Tensor):
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(
                f'input size {tuple(x.shape[-2:])} is not a multiple of the '
                f'patch size {self.patch_size}')
        x = self.patch_embed(x)
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        pos = resize_pos_embed_2d(self.pos_embed, self.pos_hw, (h, w),
                                  self.pos_interp)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x), x],
                      dim=1)
        return self.ln_pre(x + pos.to(x)), (h, w)

    def forward_wsss(self, x: Tensor, with_attn=False, attn_blocks=None,
                     **kwargs) -> dict:
        """As :meth:`WSSSViT.forward_wsss`, plus ``with_attn='sum'``
        (head-summed attention, as ExCEL's surgery blocks return it) and
        ``pooled``: the image embedding ``ln_post(cls) @ proj``."""
        mode = with_attn
        out = super().forward_wsss(
            x, with_attn='heads' if mode == 'sum' else with_attn,
            attn_blocks=attn_blocks, **kwargs)
        if mode == 'sum' and out['attns'] is not None:
            out['attns'] = [None if a is None else a.sum(1)
                            for a in out['attns']]
        out['pooled'] = out['cls_token'] @ self.proj
        return out

    def embed_image(self, x: Tensor) -> Tensor:
        """(B, proj_dims) CLIP image embedding (not normalised)."""
        return self.forward_wsss(x)['pooled']


def surgery_forward(bb: CLIPViT, x: Tensor, surgery_blocks: int = 5,
                    ex_feats: Optional[Tensor] = None,
                    norm_axis: str = 'tokens',
                    batch_mean: bool = True) -> dict:
    """ExCEL's dual-path forward of a CLIP tower (``clip.md`` §4.2), no grad
    needed by the callers.

    The first ``num_layers - surgery_blocks`` blocks are plain. In the
    others, the original stream runs the CLIP block and a calibrated
    stream (starting from the same tokens) adds ``proj(A v)`` without the
    MLP, where ``A = (softmax(q q^T s) + softmax(k k^T s) + softmax(v v^T
    s)) / 3`` per head (q, k, v from the original stream's LayerNorm'd
    tokens), plus -- with ``ex_feats`` (B, C, h, w), ExCEL's learned
    calibration -- ``softmax(S)`` on the patch pairs, ``S = 3 (cos - mean
    cos)`` of the features with negative entries dropped; ``A`` summed over
    heads multiplies every head's v.

    ``norm_axis``: ``'tokens'`` (the reference's CLIP-Surgery quirk: the
    features divided by their norm over the token axis) or ``'channels'``
    (each token a unit vector). ``batch_mean``: the LVC's ``mean cos`` over
    the whole batch (the reference) or per image.

    Returns:
        dict: ``feats`` (B, 1 + N, D): ``ln_post`` and ``proj`` of the
        calibrated tokens (class token from the original stream), divided
        by their norm over ``norm_axis``;
        ``attns``: per block, the head mean (plain blocks) or the head sum
        of the original attention (surgery blocks), (B, 1 + N, 1 + N);
        ``levels``: each block's original-stream output as a map;
        ``grid``.
    """
    x, grid = bb._embed(x)
    start = bb.num_layers - surgery_blocks
    attns, levels = [], []
    lvc = None
    if ex_feats is not None:
        f = F.normalize(ex_feats.flatten(2), dim=1)
        s = f.transpose(1, 2) @ f
        s = 3 * (s - (s.mean() if batch_mean else
                      s.mean((1, 2), keepdim=True)))
        s = s.masked_fill(s < 0, float('-inf'))
        lvc = torch.nan_to_num(s.softmax(-1))               # (B, N, N)
    xc = x
    for i, blk in enumerate(bb.blocks):
        if i < start:
            x, attn = blk(x, with_attn=True)
            attns.append(attn.mean(1))
            xc = x
        else:
            b, n, c = x.shape
            heads = blk.attn.num_heads
            qkv = blk.attn.qkv(blk.norm1(x)).reshape(b, n, 3, heads,
                                                    c // heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            s = blk.attn.scale
            ori = ((q @ k.transpose(-2, -1)) * s).softmax(-1)
            cal = sum(((t @ t.transpose(-2, -1)) * s).softmax(-1)
                      for t in (q, k, v)) / 3
            if lvc is not None:
                cal = cal.clone()
                cal[:, :, 1:, 1:] = cal[:, :, 1:, 1:] + lvc[:, None]
            out_c = cal.sum(1, keepdim=True) @ v              # (B, H, N, d)
            xc = xc + blk.attn.proj(out_c.transpose(1, 2).reshape(b, n, c))
            out = (ori @ v).transpose(1, 2).reshape(b, n, c)
            x = x + blk.ls1(blk.attn.proj(out))
            x = x + blk.ls2(blk.mlp(blk.norm2(x)))
            attns.append(ori.sum(1))
        levels.append(bb._to_map(x, grid))
    xc = torch.cat([x[:, :1], xc[:, 1:]], 1)
    feats = bb.norm(xc) @ bb.proj
    feats = feats / feats.norm(dim=1 if norm_axis == 'tokens' else -1,
                               keepdim=True)
    return dict(feats=feats, attns=attns, levels=levels, grid=grid)
