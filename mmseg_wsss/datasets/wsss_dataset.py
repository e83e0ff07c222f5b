"""Weak-label datasets: images + image-level labels (+ masks for evaluation).

The on-disk format is the one public WSSS codes share (VOC layout):

.. code-block:: none

    data_root/
      JPEGImages/<id>.jpg
      SegmentationClass[Aug]/<id>.png   # optional for training, palette or
                                         # grey PNGs with values 0..K and 255
      ImageSets/Segmentation/<split>.txt # one id per line
      cls_labels.npy                     # optional: dict id -> K-vector

Image-level labels come from ``cls_labels.npy`` (``np.save`` of a dict
``id -> float vector of length K``, background excluded) or, without it, are
derived from the masks (``tools/make_cls_labels.py`` writes the file from
masks once, which is much faster for large sets).
"""
import os.path as osp
from typing import Dict, List, Optional

import mmcv
import mmengine
import numpy as np
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset, PascalVOCDataset
from mmseg.registry import DATASETS


def labels_from_mask(mask: np.ndarray, num_classes: int,
                     path: str = '<mask>',
                     ignore_index: int = 255) -> np.ndarray:
    """Image-level K-vector from a mask with values in 0..K and ignore.

    Raises:
        ValueError: naming ``path`` when the mask has other values.
    """
    values = np.unique(mask)
    bad = values[(values > num_classes) & (values != ignore_index)]
    if bad.size:
        raise ValueError(
            f'{path}: mask values {bad.tolist()} are outside 0..{num_classes}'
            f' and {ignore_index}; is it a colour (RGB) PNG or a mask of a '
            'dataset with more classes?')
    vec = np.zeros(num_classes, dtype=np.float32)
    fg = values[(values >= 1) & (values <= num_classes)]
    vec[fg.astype(np.int64) - 1] = 1
    return vec


def load_cls_labels(path: str) -> Dict[str, np.ndarray]:
    """Load a ``cls_labels.npy`` dict (id -> K-vector)."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'image-level label file {path!r} not found; write it from the '
            'masks with tools/make_cls_labels.py or leave cls_labels_file '
            'unset to derive labels from the masks')
    obj = np.load(path, allow_pickle=True)
    if obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise ValueError(f'{path} must hold a dict id -> label vector '
                         f'(np.save of a dict), got {type(obj).__name__}')
    return obj


@DATASETS.register_module()
class WSSSDataset(BaseSegDataset):
    """Weak-label dataset for any folder in VOC layout.

    Each data info holds ``img_path``, ``img_id``, ``img_labels`` (float32
    K-vector over the foreground classes, background = class 0 excluded) and,
    when masks are configured, ``seg_map_path``.

    Args:
        ann_file (str): Id list, one id per line.
        cls_labels_file (str, optional): ``cls_labels.npy``. Without it the
            labels are derived from the masks.
        filter_empty_labels (bool, optional): Drop images whose label set is
            empty (reported once in the log). Defaults to ``not test_mode``.
        metainfo (dict): Must give ``classes`` with ``'background'`` first
            (the subclasses for VOC and COCO define them).
        Other arguments as :class:`mmseg.datasets.BaseSegDataset`; set
        ``data_prefix=dict(img_path=..., seg_map_path=...)`` and leave
        ``seg_map_path`` out (or empty) when there are no masks.

    Raises:
        FileNotFoundError / ValueError / KeyError: on a missing id list,
            image, mask or label file, a label vector of the wrong length, an
            id missing from the label file or a mask with values outside
            0..K and 255; the message names the file.
    """

    def __init__(self,
                 ann_file: str = '',
                 cls_labels_file: Optional[str] = None,
                 filter_empty_labels: Optional[bool] = None,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 data_prefix: dict = dict(img_path='', seg_map_path=''),
                 data_root: Optional[str] = None,
                 test_mode: bool = False,
                 **kwargs) -> None:
        self.has_masks = bool(data_prefix.get('seg_map_path'))
        if cls_labels_file and data_root and not osp.isabs(cls_labels_file):
            cls_labels_file = osp.join(data_root, cls_labels_file)
        self.cls_labels_file = cls_labels_file
        self.filter_empty_labels = (not test_mode
                                    if filter_empty_labels is None else
                                    filter_empty_labels)
        super().__init__(
            ann_file=ann_file,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            data_prefix=data_prefix,
            data_root=data_root,
            test_mode=test_mode,
            **kwargs)

    @property
    def num_fg_classes(self) -> int:
        return len(self._metainfo['classes']) - 1

    def load_data_list(self) -> List[dict]:
        classes = self._metainfo.get('classes')
        if not classes or len(classes) < 2 or classes[0] != 'background':
            raise ValueError(
                f'{type(self).__name__} needs metainfo classes with '
                f"'background' first and at least one object class, got "
                f'{classes}')
        if self.label_map is not None:
            raise ValueError('class subsets (metainfo classes different from '
                             f'{type(self).__name__}.METAINFO) are not '
                             'supported by weak-label datasets')
        if not self.ann_file or not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'id list {self.ann_file!r} not found (ann_file, relative to '
                f'data_root {self.data_root!r})')
        ids = [i.strip() for i in mmengine.list_from_file(self.ann_file)]
        ids = [i for i in ids if i]
        img_dir = self.data_prefix['img_path']
        seg_dir = self.data_prefix.get('seg_map_path') if self.has_masks \
            else None
        k = self.num_fg_classes

        self._check_exist(
            [osp.join(img_dir, i + self.img_suffix) for i in ids], 'images')
        if seg_dir is not None:
            self._check_exist(
                [osp.join(seg_dir, i + self.seg_map_suffix) for i in ids],
                'masks')
        labels = self._load_labels(ids, seg_dir, k)

        data_list, empty = [], []
        for i in ids:
            if self.filter_empty_labels and not labels[i].any():
                empty.append(i)
                continue
            info = dict(
                img_path=osp.join(img_dir, i + self.img_suffix),
                img_id=i,
                img_labels=labels[i],
                num_fg_classes=k,
                label_map=self.label_map,
                reduce_zero_label=self.reduce_zero_label,
                seg_fields=[])
            if seg_dir is not None:
                info['seg_map_path'] = osp.join(seg_dir,
                                                i + self.seg_map_suffix)
            data_list.append(info)
        if empty:
            print_log(
                f'{type(self).__name__}({osp.basename(self.ann_file)}): '
                f'excluded {len(empty)} of {len(ids)} images whose image-'
                f'level label set is empty (e.g. {", ".join(empty[:3])}); '
                'set filter_empty_labels=False to keep them',
                logger='current')
        if not data_list:
            raise ValueError(f'{self.ann_file}: no usable images')
        return data_list

    def _check_exist(self, paths: List[str], what: str) -> None:
        missing = [p for p in paths if not osp.isfile(p)]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} of {len(paths)} {what} listed in '
                f'{self.ann_file} are missing, e.g. {missing[:3]}; check '
                'data_root/data_prefix or the id list')

    def _load_labels(self, ids: List[str], seg_dir: Optional[str],
                     k: int) -> Dict[str, np.ndarray]:
        if self.cls_labels_file:
            table = load_cls_labels(self.cls_labels_file)
            out = {}
            for i in ids:
                if i not in table:
                    raise KeyError(f'id {i!r} of {self.ann_file} has no entry '
                                   f'in {self.cls_labels_file}')
                vec = np.asarray(table[i], dtype=np.float32).reshape(-1)
                if vec.size != k:
                    raise ValueError(
                        f'{self.cls_labels_file}: label vector of {i!r} has '
                        f'length {vec.size}, expected {k} (the foreground '
                        'classes, background excluded)')
                out[i] = vec
            return out
        if seg_dir is None:
            raise ValueError(
                'no image-level labels: give cls_labels_file or '
                'data_prefix.seg_map_path to derive them from the masks')
        out = {}
        for i in mmengine.track_iter_progress(ids) if len(ids) > 2000 \
                else ids:
            path = osp.join(seg_dir, i + self.seg_map_suffix)
            mask = mmcv.imread(path, flag='unchanged', backend='pillow')
            out[i] = labels_from_mask(mask, k, path, self.ignore_index)
        return out


@DATASETS.register_module()
class WSSSVOCDataset(WSSSDataset):
    """PASCAL VOC 2012 (+ SBD ``SegmentationClassAug``) with image labels.

    Typical use: ``data_root='data/VOCdevkit/VOC2012'``,
    ``ann_file='ImageSets/Segmentation/train_aug.txt'`` (10,582 ids),
    ``cls_labels_file='cls_labels.npy'`` (the 20-vector dict public WSSS
    codes ship), ``data_prefix=dict(img_path='JPEGImages',
    seg_map_path='SegmentationClassAug')``.
    """
    METAINFO = PascalVOCDataset.METAINFO


COCO_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard',
    'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
    'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork',
    'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair',
    'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop',
    'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven',
    'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush')


def _palette(n: int) -> list:
    """The PASCAL VOC colour map, extended to ``n`` classes."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append([r, g, b])
    return out


@DATASETS.register_module()
class WSSSCOCODataset(WSSSDataset):
    """MS COCO 2014 for WSSS (80 classes + background), in the layout of the
    public WSSS codes: ``JPEGImages/{train2014,val2014}/<id>.jpg``,
    ``SegmentationClass/{train2014,val2014}/<id>.png`` (values 0..80, 255)
    and an 80-vector ``cls_labels.npy``; ids like
    ``COCO_train2014_000000000009``.
    """
    METAINFO = dict(
        classes=('background', ) + COCO_CLASSES, palette=_palette(81))


def voc_palette() -> list:
    return _palette(256)
