"""Pre-flight check: decode every image and mask of a config's datasets and
list every bad file with the fix, before a long run finds them one by one.

    python tools/check_dataset.py CONFIG [--splits train val test]
                                  [--workers 4] [--out report.json]
                                  [--cfg-options k=v ...]

Checks, per file (in worker processes, with a progress bar):

- images: empty files, files PIL or OpenCV cannot decode, truncated files,
  and JPEGs libjpeg warns about ("Corrupt JPEG data: ... extraneous bytes"
  -- these decode silently during training, with garbage in them);
- masks: not a PNG, colour (RGB/RGBA) PNGs, values outside 0..K and 255,
  a size different from the image's;
- the image-level label file (``cls_labels_file``), read as training reads
  it: unreadable or code-carrying files, missing ids, NaN, strings, values
  other than 0/1, vectors of the wrong length or shape.

Exits 1 when any file is bad (0 otherwise), so it can gate a job script.
The datasets are those of ``train_dataloader``, ``val_dataloader``,
``test_dataloader`` and ``val_cfg.extra_evals``.
"""
import argparse
import json
import os
import os.path as osp
import sys
from collections import Counter, OrderedDict

import mmengine
import numpy as np
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from PIL import Image

from mmseg_wsss.utils.decode import decode_with_messages
from mmseg_wsss.utils.workers import WorkerPool, interruptible

FIX_IMAGE = ('re-download or re-extract this file, or remove its id from '
             'the id list')
FIX_MASK = ('masks must be grey or palette PNGs of class indices (0..K, '
            '255 = ignore): convert colour masks back to indices, or point '
            'seg_map_path at the folder of index masks')
FIX_SIZE = ("a mask must have its image's size, pixel for pixel: re-create "
            'it at the image size (or check that the image and the mask are '
            'the same id, e.g. not a resized copy of one of them)')
FIX_LABELS = ('rewrite the label file from the masks with '
              'tools/make_cls_labels.py (or fix the entries named)')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--splits', nargs='+',
                        default=['train', 'val', 'test'],
                        choices=['train', 'val', 'test'])
    parser.add_argument('--workers', type=int,
                        default=min(8, os.cpu_count() or 1))
    parser.add_argument('--out', help='write the report as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def check_image(path: str):
    """(problems, (h, w) or None) of one image file."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        return [f'cannot read: {e}'], None
    if data.size == 0:
        return ['empty file'], None
    problems = []
    try:
        with Image.open(path) as im:
            im.load()
    except Exception as e:  # PIL: truncated, not an image, ...
        problems.append(f'PIL cannot decode it: {e}')
    img, messages = decode_with_messages(data)
    if img is None:
        problems.append('OpenCV cannot decode it')
    if messages:
        problems.append('decoder warnings: ' +
                        ' | '.join(messages.splitlines()))
    return problems, (img.shape[:2] if img is not None else None)


def check_mask(path: str, num_classes: int, img_hw=None):
    from mmseg_wsss.datasets.wsss_dataset import png_colour_type
    problems = []
    if path.endswith('.png'):
        kind = png_colour_type(path)
        if kind is None:
            return ['not a PNG file']
        if kind not in ('grey', 'palette'):
            problems.append(f'{kind} PNG, not class indices')
    try:
        with Image.open(path) as im:
            mask = np.array(im)
    except Exception as e:
        return problems + [f'cannot decode: {e}']
    if mask.ndim != 2:
        return problems + [f'has {mask.shape[-1]} channels, expected one']
    values = np.unique(mask)
    bad = values[(values > num_classes) & (values != 255)]
    if bad.size:
        problems.append(f'values {bad[:8].tolist()} outside 0..{num_classes}'
                        ' and 255')
    if img_hw is not None and tuple(mask.shape) != tuple(img_hw):
        problems.append(f'size {mask.shape[1]}x{mask.shape[0]} differs from '
                        f'the image\'s {img_hw[1]}x{img_hw[0]}:')
    return problems


def check_pair(job):
    """Worker: check one image and its mask; returns the bad files."""
    img_path, mask_path, num_classes = job
    out = []
    problems, hw = check_image(img_path)
    if problems:
        out.append(dict(file=img_path, kind='image', problems=problems,
                        fix=FIX_IMAGE))
    if mask_path is not None:
        if not osp.isfile(mask_path):
            out.append(dict(file=mask_path, kind='mask',
                            problems=['missing'], fix=FIX_MASK))
        else:
            problems = check_mask(mask_path, num_classes, hw)
            size = [p for p in problems if p.startswith('size ')]
            other = [p for p in problems if not p.startswith('size ')]
            if other:
                out.append(dict(file=mask_path, kind='mask',
                                problems=other, fix=FIX_MASK))
            if size:
                out.append(dict(file=mask_path, kind='mask size',
                                problems=[f'{size[0]} {img_path}'],
                                fix=FIX_SIZE))
    return out


def dataset_cfgs(cfg, splits):
    """(name, dataset config) of the config's datasets, deduplicated."""
    found = OrderedDict()
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if loader:
            found[split] = loader['dataset']
    if 'val' in splits:
        for extra in (cfg.get('val_cfg') or {}).get('extra_evals', []):
            found[f"val:{extra.get('name', 'extra')}"] = \
                extra['dataloader']['dataset']
    unique, seen = OrderedDict(), set()
    for name, ds in found.items():
        key = json.dumps(ds, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            unique[name] = ds
    return unique


def file_jobs(ds_cfg):
    """(jobs, description) of one dataset config: every image with its mask
    (built lazily, so nothing is checked or decoded while listing)."""
    from mmseg.registry import DATASETS
    ds_cfg = dict(ds_cfg, lazy_init=True)
    ds_cfg.pop('indices', None)
    ds = DATASETS.build(ds_cfg)
    img_dir = ds.data_prefix.get('img_path', '')
    seg_dir = ds.data_prefix.get('seg_map_path') or None
    if ds.ann_file:
        if not osp.isfile(ds.ann_file):
            sys.exit(f'id list {ds.ann_file} not found')
        ids = [i.strip() for i in mmengine.list_from_file(ds.ann_file)]
        ids = [i for i in ids if i]
    else:
        ids = sorted(f[:-len(ds.img_suffix)] for f in os.listdir(img_dir)
                     if f.endswith(ds.img_suffix))
    k = len(ds.metainfo['classes']) - 1 if \
        ds.metainfo['classes'][0] == 'background' else \
        len(ds.metainfo['classes'])
    jobs = [(osp.join(img_dir, i + ds.img_suffix),
             osp.join(seg_dir, i + ds.seg_map_suffix) if seg_dir else None,
             k) for i in ids]
    return jobs, f'{type(ds).__name__} {ds.ann_file or img_dir}', (
        ds.ann_file, img_dir, seg_dir), check_labels(ds, ids, k)


def check_labels(ds, ids, k):
    """The image-level label file, read exactly as training reads it
    (every id, its vector's values and length); [] when it is fine or the
    dataset has no label file (labels then come from the masks, which the
    mask check decodes)."""
    path = getattr(ds, 'cls_labels_file', None)
    if not path:
        return []
    try:
        ds._load_labels(ids, None, k)
    except Exception as e:  # noqa: B902  (every refusal is reported)
        text = str(e).strip('"')
        return [dict(file=path, kind='labels',
                     problems=[f'{type(e).__name__}: {text}'],
                     fix=FIX_LABELS)]
    return []


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import mmseg_wsss  # noqa: F401  (registers the datasets)

    report, seen = OrderedDict(), {}
    for name, ds_cfg in dataset_cfgs(cfg, args.splits).items():
        jobs, desc, key, label_problems = file_jobs(ds_cfg)
        if key in seen:
            print(f'\n[{name}] the same files as [{seen[key]}]')
            continue
        seen[key] = name
        print(f'\n[{name}] {desc}: {len(jobs)} images'
              f'{" + masks" if jobs and jobs[0][1] else ""}')
        bad = list(label_problems)
        bar = mmengine.ProgressBar(len(jobs))
        try:
            with interruptible():
                if args.workers > 0:
                    with WorkerPool(args.workers) as pool:
                        for found in pool.imap(check_pair, jobs):
                            bad += found
                            bar.update()
                else:
                    for job in jobs:
                        bad += check_pair(job)
                        bar.update()
        except KeyboardInterrupt:
            sys.exit('\ninterrupted: nothing was written; the check is '
                     'read-only, run it again')
        report[name] = dict(dataset=desc, files=len(jobs), bad=bad)
        print()

    total = sum(len(r['bad']) for r in report.values())
    print('\n' + '=' * 70)
    for name, r in report.items():
        kinds = Counter(b['kind'] for b in r['bad'])
        print(f'[{name}] {r["files"]} images: ' + (
            ', '.join(f'{n} bad {k}s' for k, n in kinds.items())
            if r['bad'] else 'all good'))
        for b in r['bad']:
            print(f'  {b["file"]}: {"; ".join(b["problems"])}')
            print(f'      fix: {b["fix"]}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
        print(f'report written to {args.out}')
    if total:
        print(f'\n{total} bad file(s): fix them before training.')
        sys.exit(1)
    print('\nevery image and mask decodes cleanly.')


if __name__ == '__main__':
    main()
