"""Convert ViT weights between key layouts (timm, DINOv2, mmpretrain,
mmseg); WSSSViT reads all of them directly, this is for other tools.

    python tools/convert_vit_weights.py SRC DST [--check-patch 16]
        [--to timm|dinov2|mmpretrain|mmseg]

SRC: a ViT state dict in any of the four layouts (``.pth``/``.bin``/
``.safetensors``, possibly wrapped in ``state_dict``/``model`` or prefixed
``module.``/``backbone.``; a whole mmpretrain or mmseg model checkpoint works:
its ``backbone.*`` keys are taken). The layout is detected and printed.
DST: a ``.pth`` in the ``--to`` layout (default timm = WSSSViT's own keys):
classifier keys dropped, ``pos_embed`` kept at its own grid. mmpretrain and
mmseg files are written as ``state_dict`` with ``backbone.`` keys, as their
model zoos serve them. The script prints the architecture it found so the
config can be checked against it.
"""
import argparse
import math

import torch

from mmseg_wsss.models.backbones import convert_timm_vit
from mmseg_wsss.models.backbones.vit_layouts import (LAYOUTS, detect_layout,
                                                     from_timm, to_timm,
                                                     unwrap)
from mmseg_wsss.utils import load_state_dict_file


def describe(sd):
    depth = 1 + max(
        int(k.split('.')[1]) for k in sd if k.startswith('blocks.'))
    dims = sd['cls_token'].shape[-1]
    proj = sd['patch_embed.proj.weight']
    grid = int(math.isqrt(sd['pos_embed'].shape[1] - 1))
    return dict(
        patch_size=proj.shape[-1],
        embed_dims=dims,
        num_layers=depth,
        layer_scale='blocks.0.ls1.gamma' in sd,
        pos_grid=grid,
        params=sum(v.numel() for v in sd.values()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--to', choices=LAYOUTS, default='timm',
                        help='layout of DST (default: timm = WSSSViT keys)')
    parser.add_argument('--check-patch', type=int,
                        help='fail unless the patch size is this')
    args = parser.parse_args()
    raw = unwrap(load_state_dict_file(args.src))
    try:
        layout = detect_layout(raw)
    except ValueError as e:
        raise SystemExit(f'{args.src}: {e}')
    sd = convert_timm_vit(to_timm(raw, layout))
    missing = {'cls_token', 'pos_embed', 'patch_embed.proj.weight'} - set(sd)
    if missing:
        raise SystemExit(f'{args.src} ({layout} layout) lacks '
                         f'{sorted(missing)}')
    info = describe(sd)
    if args.check_patch and info['patch_size'] != args.check_patch:
        raise SystemExit(f'patch size {info["patch_size"]} != '
                         f'{args.check_patch}')
    out = from_timm(sd, args.to)
    if args.to in ('mmpretrain', 'mmseg'):
        out = dict(state_dict={'backbone.' + k: v for k, v in out.items()})
    torch.save(out, args.dst)
    print(f'{args.src}: {layout} layout -> {args.dst}: {args.to} layout; '
          f'{info}')


if __name__ == '__main__':
    main()
