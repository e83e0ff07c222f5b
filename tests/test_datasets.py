import os
import os.path as osp
import shutil

import numpy as np
import pytest
from mmengine.logging import MMLogger
from PIL import Image

from mmseg_wsss.datasets import (WSSSDataset, WSSSToyDataset, WSSSVOCDataset,
                                 labels_from_mask, load_cls_labels)

from .conftest import COCO128, VOC_META, require_shared


def _toy(root, **kw):
    args = dict(
        data_root=root,
        ann_file='ImageSets/Segmentation/train.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        pipeline=[])
    args.update(kw)
    return WSSSToyDataset(**args)


def _copy(toy_root, tmp_path):
    dst = str(tmp_path / 'toy')
    shutil.copytree(toy_root, dst)
    return dst


def test_labels_from_file_equal_labels_from_masks(toy_root):
    from_file = _toy(toy_root, filter_empty_labels=False)
    from_mask = _toy(toy_root, cls_labels_file=None,
                     filter_empty_labels=False)
    assert len(from_file) == len(from_mask) == 40
    for a, b in zip(from_file, from_mask):
        assert a['img_id'] == b['img_id']
        np.testing.assert_array_equal(a['img_labels'], b['img_labels'])
        assert a['img_labels'].shape == (4, )
        mask = np.array(Image.open(a['seg_map_path']))
        present = sorted(set(np.unique(mask).tolist()) - {0, 255})
        assert (np.flatnonzero(a['img_labels']) + 1).tolist() == present


def test_empty_label_images_excluded_and_reported(toy_root, capsys):
    all_ids = _toy(toy_root, filter_empty_labels=False)
    n_empty = sum(not d['img_labels'].any() for d in all_ids)
    assert n_empty >= 1, 'the toy set is built to contain empty images'
    MMLogger.get_instance('wsss_test_log', log_level='INFO')
    ds = _toy(toy_root)
    assert len(ds) == 40 - n_empty
    assert all(d['img_labels'].any() for d in ds)
    out = capsys.readouterr().out
    assert f'excluded {n_empty} of 40 images' in out
    # test mode keeps them (evaluation must see every image)
    assert len(_toy(toy_root, test_mode=True)) == 40


def test_missing_image_names_the_file(toy_root, tmp_path):
    root = _copy(toy_root, tmp_path)
    os.remove(osp.join(root, 'JPEGImages', 'toy_train_00003.jpg'))
    with pytest.raises(FileNotFoundError, match='toy_train_00003.jpg'):
        _toy(root)


def test_missing_id_list(toy_root):
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        _toy(toy_root, ann_file='nope.txt')


def test_wrong_label_length_names_file_and_id(toy_root, tmp_path):
    root = _copy(toy_root, tmp_path)
    labels = load_cls_labels(osp.join(root, 'cls_labels.npy'))
    labels['toy_train_00002'] = np.ones(20, np.float32)
    np.save(osp.join(root, 'cls_labels.npy'), labels)
    with pytest.raises(ValueError,
                       match=r"cls_labels.npy.*toy_train_00002.*length 20"):
        _toy(root)


def test_id_missing_from_label_file(toy_root, tmp_path):
    root = _copy(toy_root, tmp_path)
    labels = load_cls_labels(osp.join(root, 'cls_labels.npy'))
    del labels['toy_train_00005']
    np.save(osp.join(root, 'cls_labels.npy'), labels)
    with pytest.raises(KeyError, match='toy_train_00005'):
        _toy(root)


def test_bad_mask_values_name_the_file(toy_root, tmp_path):
    root = _copy(toy_root, tmp_path)
    path = osp.join(root, 'SegmentationClass', 'toy_train_00001.png')
    Image.fromarray(np.full((8, 8), 17, np.uint8)).save(path)
    # labels derived from masks: fails while loading the dataset
    with pytest.raises(ValueError, match=r'toy_train_00001.png.*\[17\]'):
        _toy(root, cls_labels_file=None)
    # labels from the file: fails when the mask is loaded
    from mmseg_wsss.datasets.transforms import LoadWSSSAnnotations
    ds = _toy(root, pipeline=[dict(type='LoadImageFromFile'),
                              dict(type='LoadWSSSAnnotations')],
              filter_empty_labels=False)
    idx = [ds.get_data_info(i)['img_id']
           for i in range(len(ds))].index('toy_train_00001')
    with pytest.raises(ValueError, match=r'toy_train_00001.png.*\[17\]'):
        LoadWSSSAnnotations()(ds.get_data_info(idx))


def test_missing_label_file_and_no_masks(toy_root):
    with pytest.raises(FileNotFoundError, match='make_cls_labels'):
        _toy(toy_root, cls_labels_file='missing.npy')
    with pytest.raises(ValueError, match='no image-level labels'):
        _toy(toy_root, cls_labels_file=None,
             data_prefix=dict(img_path='JPEGImages'))


def test_generic_dataset_needs_background_first(toy_root):
    with pytest.raises(ValueError, match='background'):
        WSSSDataset(data_root=toy_root,
                    ann_file='ImageSets/Segmentation/train.txt',
                    data_prefix=dict(img_path='JPEGImages'),
                    cls_labels_file='cls_labels.npy',
                    metainfo=dict(classes=('boat', 'bird')))


def test_labels_from_mask_helper():
    m = np.array([[0, 3, 255], [1, 1, 0]], np.uint8)
    np.testing.assert_array_equal(labels_from_mask(m, 4), [1, 0, 1, 0])
    with pytest.raises(ValueError, match='x.png'):
        labels_from_mask(np.array([[5]]), 4, 'x.png')


def test_real_voc_metadata():
    """The VOC loader against the real id lists and label file."""
    require_shared(VOC_META)
    labels = load_cls_labels(osp.join(VOC_META, 'cls_labels_onehot.npy'))
    assert len(labels) == 12031
    ids = [line.strip()
           for line in open(osp.join(VOC_META, 'train_aug.txt'))]
    assert len(ids) == 10582
    assert all(labels[i].shape == (20, ) for i in ids)
    assert all(labels[i].any() for i in ids)  # no empty VOC image
    # without images the loader stops early and names a missing image
    with pytest.raises(FileNotFoundError,
                       match=r'10582 of 10582 images.*2007_000032'):
        WSSSVOCDataset(
            data_root=VOC_META,
            ann_file='train_aug.txt',
            cls_labels_file='cls_labels_onehot.npy',
            data_prefix=dict(img_path='JPEGImages'),
            pipeline=[])


def test_coco128_labels_from_masks():
    require_shared(COCO128)
    ds = WSSSVOCDataset(
        data_root=COCO128,
        ann_file='ImageSets/Segmentation/all.txt',
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        pipeline=[])
    assert len(ds) == 97  # 31 of 128 photos hold no VOC class
    counts = np.sum([d['img_labels'] for d in ds], axis=0)
    classes = WSSSVOCDataset.METAINFO['classes'][1:]
    assert counts[classes.index('person')] == 61
    assert counts[classes.index('car')] == 12
