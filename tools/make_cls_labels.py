"""Write ``cls_labels.npy`` (id -> K-vector of image-level labels) from masks.

    python tools/make_cls_labels.py MASK_DIR ID_LIST [ID_LIST ...] \
        --num-classes 20 --out cls_labels.npy

The output format follows the extension of ``--out``: ``.npy`` is the dict
format public WSSS codes share (``np.save`` of a dict); ``.npz`` (arrays
``ids`` and ``labels``) and ``.json`` (``{"id": [0, 1, ...]}``) need no
pickle. Background excluded, class k at index k-1. Masks must hold values in
0..K and 255; anything else stops the run with the file named.
"""
import argparse
import os.path as osp

import mmcv
import mmengine

from mmseg_wsss.datasets import labels_from_mask, save_cls_labels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('mask_dir', help='folder of <id>.png masks')
    parser.add_argument('id_lists', nargs='+', help='id list files')
    parser.add_argument('--num-classes', type=int, required=True,
                        help='foreground classes K (VOC 20, COCO 80)')
    parser.add_argument('--out', required=True,
                        help='output file: .npy, .npz or .json')
    parser.add_argument('--suffix', default='.png')
    args = parser.parse_args()
    if not args.out.endswith(('.npy', '.npz', '.json')):
        parser.error(f'--out {args.out}: use a .npy, .npz or .json name')

    ids = []
    for f in args.id_lists:
        ids += [i.strip() for i in mmengine.list_from_file(f) if i.strip()]
    ids = list(dict.fromkeys(ids))
    labels = {}
    for i in mmengine.track_iter_progress(ids):
        path = osp.join(args.mask_dir, i + args.suffix)
        if not osp.isfile(path):
            raise FileNotFoundError(f'mask of id {i!r} not found: {path}')
        mask = mmcv.imread(path, flag='unchanged', backend='pillow')
        labels[i] = labels_from_mask(mask, args.num_classes, path)
    save_cls_labels(labels, args.out)
    empty = sum(not v.any() for v in labels.values())
    print(f'\nwrote {len(labels)} label vectors to {args.out} '
          f'({empty} with an empty label set)')


if __name__ == '__main__':
    main()
