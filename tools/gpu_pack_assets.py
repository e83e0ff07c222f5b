"""Assets of ``tools/gpu_check.sh`` (not a user tool).

    python tools/gpu_pack_assets.py WEIGHTS DATA_ROOT PACK   # pack
    python tools/gpu_pack_assets.py --unpack PACK WEIGHTS_OUT
    python tools/gpu_pack_assets.py --summary OUT_DIR

pack: ``PACK/dinov2_vits14_timm_fp16.pth`` (the state dict in float16: half
the size, so weights, photos and wheels fit the device tool's 64 MiB) and
``PACK/coco128_voc`` (the photos re-encoded as JPEG quality 85 at their own
size, masks and id lists copied). unpack: the float32 state dict back.
summary: ``OUT_DIR/summary.json`` from the benchmark JSONs and the last
validation of each training log, printed as a table.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import shutil
import sys

WEIGHTS_NAME = 'dinov2_vits14_timm_fp16.pth'


def pack(weights: str, data_root: str, out: str) -> None:
    import torch
    from PIL import Image

    from mmseg_wsss.utils.checkpoint import safe_torch_load
    os.makedirs(out, exist_ok=True)
    state = safe_torch_load(weights, map_location='cpu')
    state = state.get('state_dict', state) if isinstance(state, dict) \
        else state
    half = {
        k: v.half() if torch.is_floating_point(v) else v
        for k, v in state.items()
    }
    torch.save(half, osp.join(out, WEIGHTS_NAME))
    dst = osp.join(out, 'coco128_voc')
    if osp.exists(dst):
        shutil.rmtree(dst)
    for sub in ('ImageSets', 'SegmentationClass', 'SegmentationClassCOCO80'):
        if osp.isdir(osp.join(data_root, sub)):
            shutil.copytree(osp.join(data_root, sub), osp.join(dst, sub))
    os.makedirs(osp.join(dst, 'JPEGImages'))
    for path in sorted(glob.glob(osp.join(data_root, 'JPEGImages', '*'))):
        img = Image.open(path).convert('RGB')
        img.save(osp.join(dst, 'JPEGImages', osp.basename(path)),
                 quality=85)
    print(f'packed {len(half)} tensors and '
          f'{len(os.listdir(osp.join(dst, "JPEGImages")))} photos in {out}')


def unpack(pack_dir: str, weights_out: str) -> None:
    import torch

    from mmseg_wsss.utils.checkpoint import safe_torch_load
    state = safe_torch_load(osp.join(pack_dir, WEIGHTS_NAME),
                            map_location='cpu')
    full = {
        k: v.float() if torch.is_floating_point(v) else v
        for k, v in state.items()
    }
    os.makedirs(osp.dirname(osp.abspath(weights_out)), exist_ok=True)
    torch.save(full, weights_out)
    print(f'unpacked {len(full)} tensors to {weights_out} (float32)')


def _last_val(log_path: str) -> dict:
    """The last ``Iter(val)`` line of an mmengine log as numbers."""
    last = None
    for line in open(log_path, errors='replace'):
        if 'Iter(val)' in line:
            last = line
    if last is None:
        return {}
    return {
        k: float(v)
        for k, v in re.findall(r'(\S+): ([-\d.]+)(?=\s|$)', last)
    }


def summary(out_dir: str) -> dict:
    res = dict(bench={}, coco128={})
    for path in sorted(glob.glob(osp.join(out_dir, 'bench_*.json'))):
        b = json.load(open(path))
        w, s = b['wsss'], b['supervised']
        res['bench'][osp.basename(path)[6:-5]] = dict(
            device=b.get('device_name'),
            wsss_s_per_iter=w['step_s_median'],
            supervised_s_per_iter=s['step_s_median'],
            wsss_peak_mib=w.get('peak_mem_mib'),
            supervised_peak_mib=s.get('peak_mem_mib'),
            reads=b['ratio'].get('reads'),
            peak_mem_ratio=b['ratio'].get('peak_mem'))
    for path in sorted(glob.glob(osp.join(out_dir, '*.log'))):
        res['coco128'][osp.basename(path)[:-4]] = _last_val(path)
    with open(osp.join(out_dir, 'summary.json'), 'w') as f:
        json.dump(res, f, indent=2)
    for name, b in res['bench'].items():
        print(f'{name:24s} {b["wsss_s_per_iter"]:.3f} s/it vs supervised '
              f'{b["supervised_s_per_iter"]:.3f}: {b["reads"]}; peak '
              f'{b["wsss_peak_mib"]} MiB')
    for name, m in res['coco128'].items():
        keys = ('mIoU', 'label_masked/mIoU', 'train/cam/mIoU',
                'train/cam/bg_thr', 'train/cam/own_mIoU')
        print(f'{name:32s} ' + ', '.join(f'{k} {m[k]}' for k in keys
                                         if k in m))
    return res


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--unpack', nargs=2, metavar=('PACK', 'WEIGHTS'))
    parser.add_argument('--summary', metavar='OUT_DIR')
    parser.add_argument('pack', nargs='*', metavar='WEIGHTS DATA_ROOT PACK')
    args = parser.parse_args(argv)
    if args.unpack:
        unpack(*args.unpack)
    elif args.summary:
        summary(args.summary)
    elif len(args.pack) == 3:
        pack(*args.pack)
    else:
        parser.error('give WEIGHTS DATA_ROOT PACK, --unpack or --summary')
    return 0


if __name__ == '__main__':
    sys.exit(main())
