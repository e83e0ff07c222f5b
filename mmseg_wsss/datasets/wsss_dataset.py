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
``id -> float vector of length K``, background excluded; ``.npz`` and
``.json`` work too, see :func:`load_cls_labels`) or, without it, are
derived from the masks (``tools/make_cls_labels.py`` writes the file from
masks once, which is much faster for large sets).
"""
import json
import logging
import os.path as osp
import pickle
import sys
from typing import Dict, List, Optional

import mmcv
import mmengine
import numpy as np
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset, PascalVOCDataset
from mmseg.registry import DATASETS
from PIL import Image

from mmseg_wsss.utils.decode import capture_fd2


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


class _LabelUnpickler(pickle.Unpickler):
    """Unpickles only what ``np.save`` of a dict id -> numeric vector
    holds: numpy arrays, dtypes and scalars (``OrderedDict`` and the
    latin-1 byte decoding of protocol-2 files too)."""

    ALLOWED = {
        ('numpy.core.multiarray', '_reconstruct'),
        ('numpy._core.multiarray', '_reconstruct'),
        ('numpy.core.multiarray', 'scalar'),
        ('numpy._core.multiarray', 'scalar'),
        ('numpy', 'ndarray'),
        ('numpy', 'dtype'),
        ('collections', 'OrderedDict'),
        # protocol-2 pickles (Python 2 era files such as VOC's) rebuild
        # array bytes with _codecs.encode(str, 'latin1')
        ('_codecs', 'encode'),
    }

    def __init__(self, fp, path: str):
        super().__init__(fp)
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED or (
                module == 'numpy.dtypes' and name.endswith('DType')):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'{self.path}: refusing to read this label file: it names '
            f'{module}.{name}, which a dict of id -> label vector never '
            'holds (unpickling it could run code from the file). Re-create '
            'it with tools/make_cls_labels.py (.npz or .json need no '
            'pickle) or from a source you trust.')


def _read_npy_dict(path: str):
    """``np.load(path, allow_pickle=True)`` without its risk: the header is
    read by numpy, an object payload by :class:`_LabelUnpickler`."""
    with open(path, 'rb') as fp:
        try:
            fmt = np.lib.format
            version = fmt.read_magic(fp)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) \
                else fmt.read_array_header_2_0
            shape, _, dtype = read_header(fp)
        except ValueError as e:
            raise ValueError(f'{path} is not a .npy file ({e})') from None
        if not dtype.hasobject:
            return np.fromfile(fp, dtype=dtype).reshape(shape)
        return _LabelUnpickler(fp, path).load()


def load_cls_labels(path: str) -> Dict[str, np.ndarray]:
    """Load image-level labels: a dict id -> K-vector.

    Formats (by extension):

    - ``.npy``: ``np.save`` of a dict, the format public WSSS codes ship
      (VOC's ``cls_labels.npy``). Read with a restricted unpickler: a file
      that names anything but numpy arrays and scalars is refused.
    - ``.npz``: arrays ``ids`` (N strings) and ``labels`` (N x K); no
      pickle.
    - ``.json``: an object ``{"id": [0, 1, ...], ...}``.

    ``tools/make_cls_labels.py`` writes all three.

    Raises:
        FileNotFoundError / ValueError / pickle.UnpicklingError: naming the
            file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'image-level label file {path!r} not found; write it from the '
            'masks with tools/make_cls_labels.py or leave cls_labels_file '
            'unset to derive labels from the masks')
    if path.endswith('.json'):
        with open(path) as f:
            try:
                obj = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(
                    f'{path} is not valid JSON ({e}); it must be an object '
                    '{"id": [0, 1, ...], ...}: rewrite it with '
                    'tools/make_cls_labels.py') from None
    elif path.endswith('.npz'):
        with np.load(path, allow_pickle=False) as z:
            if 'ids' not in z or 'labels' not in z:
                raise ValueError(f'{path} must hold arrays "ids" and '
                                 f'"labels", got {sorted(z.keys())}')
            try:
                ids, labels = z['ids'], z['labels']
            except ValueError as e:  # object arrays need pickle: refused
                raise ValueError(
                    f'{path}: {e}; "ids" must be a string array and '
                    '"labels" a numeric N x K array (np.savez with '
                    'ids=np.array(ids, dtype=str)), not object arrays. '
                    'tools/make_cls_labels.py writes such a file.') from None
            if labels.ndim != 2 or len(ids) != len(labels):
                raise ValueError(
                    f'{path}: "labels" must be N x K for the N ids, got '
                    f'{labels.shape} for {len(ids)} ids')
            obj = {str(i): v for i, v in zip(ids, labels)}
    else:
        obj = _read_npy_dict(path)
        if isinstance(obj, np.ndarray) and obj.dtype == object and \
                obj.shape == ():
            obj = obj.item()
    if not isinstance(obj, dict):
        raise ValueError(f'{path} must hold a dict id -> label vector '
                         f'(np.save of a dict), got {type(obj).__name__}')
    return obj


def save_cls_labels(labels: Dict[str, np.ndarray], path: str) -> None:
    """Write a dict id -> K-vector in the format the extension names
    (``.npy`` dict, ``.npz`` or ``.json``; see :func:`load_cls_labels`)."""
    if path.endswith('.json'):
        with open(path, 'w') as f:
            json.dump({k: [int(x) for x in np.asarray(v).reshape(-1)]
                       for k, v in labels.items()}, f)
    elif path.endswith('.npz'):
        ids = list(labels)
        np.savez_compressed(
            path, ids=np.array(ids, dtype=str),
            labels=np.stack([np.asarray(labels[i], np.float32).reshape(-1)
                             for i in ids]) if ids else np.zeros((0, 0)))
    elif path.endswith('.npy'):
        np.save(path, labels)
    else:
        raise ValueError(f'{path}: the label file must end in .npy, .npz or '
                         '.json')


PNG_COLOUR_TYPES = {0: 'grey', 2: 'RGB', 3: 'palette', 4: 'grey+alpha',
                    6: 'RGBA'}


def png_colour_type(path: str) -> Optional[str]:
    """The colour type in a PNG's header ('grey', 'palette', 'RGB', ...),
    read from its first 26 bytes; None for a file that is no PNG."""
    with open(path, 'rb') as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != b'\x89PNG\r\n\x1a\n' or \
            head[12:16] != b'IHDR':
        return None
    return PNG_COLOUR_TYPES.get(head[25], f'unknown ({head[25]})')


def check_mask_headers(paths: List[str], sample: int = 1000) -> None:
    """Cheap check, when a dataset is built (before training starts), that
    its masks are class-index PNGs: the headers of up to ``sample`` masks,
    spread evenly over the list. Full decoding of every file is
    ``tools/check_dataset.py``'s job.

    Raises:
        ValueError: naming the first masks that are colour (RGB/RGBA) PNGs
            or no PNG at all, with the fix.
    """
    pngs = [p for p in paths if p.endswith('.png')]
    if not pngs:
        return
    step = max(1, len(pngs) // sample)
    bad = []
    for p in pngs[::step]:
        kind = png_colour_type(p)
        if kind not in ('grey', 'palette'):
            bad.append((p, kind or 'not a PNG file'))
    if bad:
        listed = '; '.join(f'{p} ({k})' for p, k in bad[:3])
        raise ValueError(
            f'{len(bad)} of {len(pngs[::step])} masks checked are not '
            f'class-index PNGs, e.g. {listed}. Masks must hold one class '
            'index per pixel (0..K, 255 = ignore) as a grey or palette PNG; '
            'an RGB PNG is usually a palette mask saved in colour -- '
            'convert it back to indices (or point seg_map_path at the '
            'SegmentationClass(Aug) folder of indices). '
            'tools/check_dataset.py CONFIG lists every bad file.')


def label_vector(value, img_id: str, path: str) -> np.ndarray:
    """One entry of a label file as a float32 K-vector.

    Raises:
        ValueError: naming the file and the id when the entry is not numeric
            (strings, nested objects) or not one vector (a 2 x 2 matrix is
            not silently flattened; 1 x K and K x 1 are accepted).
    """
    try:
        vec = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f'{path}: the label entry of {img_id!r} is not numeric ({e}); '
            'each id must map to a vector of 0/1 numbers. Rewrite the file '
            'from the masks with tools/make_cls_labels.py.') from None
    if sum(d > 1 for d in vec.shape) > 1:
        raise ValueError(
            f'{path}: the label entry of {img_id!r} has shape '
            f'{tuple(vec.shape)}; it must be one vector over the foreground '
            'classes (length K, background excluded)')
    return vec.reshape(-1)


def check_pair_sizes(pairs: List, sample: int = 5000) -> None:
    """Cheap check, when an evaluation dataset is built, that each mask
    has its image's size (PNG/JPEG headers only, no decoding; up to
    ``sample`` pairs spread evenly over the list).

    Raises:
        ValueError: naming the first pairs that differ, with the fix.
    """
    step = max(1, len(pairs) // sample)
    bad = []
    for img, mask in pairs[::step]:
        try:
            with Image.open(img) as a, Image.open(mask) as b:
                if a.size != b.size:
                    bad.append(f'{mask} {b.size[0]}x{b.size[1]} vs {img} '
                               f'{a.size[0]}x{a.size[1]}')
        except OSError:
            continue  # unreadable files: the loaders name them
    if bad:
        raise ValueError(
            f'{len(bad)} of {len(pairs[::step])} masks checked differ in size '
            f'from their images, e.g. {"; ".join(bad[:3])}. A mask must have '
            "its image's size, pixel for pixel (evaluation would fail on "
            'it after training). tools/check_dataset.py CONFIG lists every '
            'such pair.')


def check_label_vector(vec: np.ndarray, img_id: str, path: str) -> None:
    """Image-level labels must be exactly 0 or 1.

    Raises:
        ValueError: naming the id, the offending values and the file, with
            the likely fix (-1/1 vectors, 255 for "unknown", NaN).
    """
    ok = np.isfinite(vec) & ((vec == 0) | (vec == 1))
    if ok.all():
        return
    bad = sorted({float(v) for v in vec[~ok]}, key=str)
    hint = 'every entry must be exactly 0 (absent) or 1 (present)'
    if (vec == -1).any():
        hint += ('; -1/1 vectors (VOC ClassificationSets style) convert '
                 'with np.maximum(v, 0)')
    if (vec == 255).any():
        hint += '; 255 ("unknown") is not supported for image labels'
    raise ValueError(
        f'{path}: the label vector of {img_id!r} holds {bad} at class '
        f'indices {np.flatnonzero(~ok).tolist()}: {hint}. Rewrite the file '
        'from the masks with tools/make_cls_labels.py.')


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

    Example:
        >>> dataset = dict(
        ...     type='WSSSDataset', data_root='data/my_set',
        ...     metainfo=dict(classes=('background', 'cat', 'dog')),
        ...     ann_file='train.txt', cls_labels_file='cls_labels.json',
        ...     data_prefix=dict(img_path='JPEGImages',
        ...                      seg_map_path='SegmentationClass'))
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
            masks = [osp.join(seg_dir, i + self.seg_map_suffix) for i in ids]
            self._check_exist(masks, 'masks')
            check_mask_headers(masks)
            if self.test_mode:  # evaluation sets: found now, not after
                check_pair_sizes([(osp.join(img_dir, i + self.img_suffix), m)
                                  for i, m in zip(ids, masks)])
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

    _warned_decode: set = set()

    def prepare_data(self, idx):
        """The pipeline's sample; what a decoder prints about a JPEG
        ("Corrupt JPEG data: ...": it decodes anyway, with damaged pixels)
        goes to the run's log once per file (per process), naming the file
        and the checker. The text still reaches stderr."""
        info = self.get_data_info(idx)
        path = info.get('img_path', '')
        if not str(path).lower().endswith(('.jpg', '.jpeg')):
            return super().prepare_data(idx)
        printed: List[str] = []
        with capture_fd2(printed):
            out = super().prepare_data(idx)
        text = printed[0] if printed else ''
        if text:
            sys.stderr.write(text + '\n')
            if path not in WSSSDataset._warned_decode:
                WSSSDataset._warned_decode.add(path)
                print_log(
                    f'{path}: the image decoder reported "{text.splitlines()[0]}"'
                    ' -- it decodes with damaged pixels. Run '
                    'tools/check_dataset.py CONFIG to list every such file, '
                    'and re-download or drop it.', logger='current',
                    level=logging.WARNING)
        return out

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
                vec = label_vector(table[i], i, self.cls_labels_file)
                check_label_vector(vec, i, self.cls_labels_file)
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

    Example:
        >>> dataset = dict(
        ...     type='WSSSVOCDataset', data_root='data/VOCdevkit/VOC2012',
        ...     ann_file='ImageSets/Segmentation/train_aug.txt',
        ...     cls_labels_file='cls_labels.npy',
        ...     data_prefix=dict(img_path='JPEGImages',
        ...                      seg_map_path='SegmentationClassAug'))
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

    Example:
        >>> dataset = dict(
        ...     type='WSSSCOCODataset', data_root='data/coco',
        ...     ann_file='train.txt', cls_labels_file='cls_labels.npy',
        ...     data_prefix=dict(img_path='JPEGImages/train2014',
        ...                      seg_map_path='SegmentationClass/train2014'))
    """
    METAINFO = dict(
        classes=('background', ) + COCO_CLASSES, palette=_palette(81))


def voc_palette() -> list:
    return _palette(256)
