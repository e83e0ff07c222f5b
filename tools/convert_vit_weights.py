"""Convert a timm-layout ViT checkpoint into a clean WSSSViT state dict.

    python tools/convert_vit_weights.py SRC DST [--check-patch 16]

SRC: a timm ViT state dict (``.pth``/``.bin``/``.safetensors``, possibly
wrapped in ``state_dict``/``model`` or prefixed ``module.``/``backbone.``),
e.g. ViT-B/16 (``vit_base_patch16_224.augreg_in21k_ft_in1k``) or DINOv2.
DST: a ``.pth`` with WSSSViT keys (classifier keys dropped, ``pos_embed`` kept
at its own grid; WSSSViT resizes it bicubically when it loads). The script
prints the architecture it found so the config can be checked against it.
"""
import argparse
import math

import torch

from mmseg_wsss.models.backbones import convert_timm_vit
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
    parser.add_argument('--check-patch', type=int,
                        help='fail unless the patch size is this')
    args = parser.parse_args()
    sd = convert_timm_vit(load_state_dict_file(args.src))
    missing = {'cls_token', 'pos_embed', 'patch_embed.proj.weight'} - set(sd)
    if missing:
        raise SystemExit(f'{args.src} is not a timm-layout ViT: no '
                         f'{sorted(missing)}')
    info = describe(sd)
    if args.check_patch and info['patch_size'] != args.check_patch:
        raise SystemExit(f'patch size {info["patch_size"]} != '
                         f'{args.check_patch}')
    torch.save(sd, args.dst)
    print(f'{args.dst}: {info}')


if __name__ == '__main__':
    main()
