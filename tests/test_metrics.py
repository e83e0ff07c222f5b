import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_wsss.evaluation import LabelMaskedIoUMetric, PseudoMaskMetric


def _sample(cams, labels, gt, logits=None, pseudo=None):
    s = SegDataSample()
    s.cams = PixelData(data=torch.as_tensor(cams, dtype=torch.float32))
    if pseudo is not None:
        s.pseudo_scores = PixelData(data=torch.as_tensor(pseudo).float())
    s.gt_img_labels = torch.as_tensor(labels, dtype=torch.float32)
    s.gt_sem_seg = PixelData(data=torch.as_tensor(gt)[None])
    if logits is not None:
        s.seg_logits = PixelData(data=torch.as_tensor(logits).float())
    return s.to_dict()


def _numpy_miou(samples, thr, k):
    """Independent reference: plain numpy confusion matrix."""
    conf = np.zeros((k + 1, k + 1), np.int64)
    for cams, labels, gt in samples:
        cams = cams * labels[:, None, None]
        full = np.concatenate([np.full((1, ) + gt.shape, thr), cams])
        pred = full.argmax(0)
        keep = gt != 255
        np.add.at(conf, (gt[keep], pred[keep]), 1)
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    with np.errstate(invalid='ignore'):
        return np.nanmean(inter / union)


def test_pseudo_mask_metric_matches_numpy_and_finds_threshold():
    rng = np.random.default_rng(0)
    k, samples = 3, []
    for _ in range(6):
        gt = np.zeros((12, 16), np.int64)
        cams = rng.uniform(0.0, 0.3, (k, 12, 16))  # background below 0.3
        labels = np.zeros(k, np.float32)
        for c in rng.choice(k, 2, replace=False):
            y, x = rng.integers(0, 8), rng.integers(0, 10)
            gt[y:y + 4, x:x + 6] = c + 1
            cams[c, y:y + 4, x:x + 6] = rng.uniform(0.5, 1.0, (4, 6))
            labels[c] = 1
        gt[0, 0] = 255
        samples.append((cams, labels, gt))
    thrs = [0.1, 0.2, 0.4, 0.6, 0.8]
    metric = PseudoMaskMetric(bg_thrs=thrs)
    metric.dataset_meta = dict(classes=('background', 'a', 'b', 'c'))
    metric.process({}, [_sample(*s) for s in samples])
    assert len(metric.results) == 1  # one running sum per rank
    res = metric.evaluate(len(samples))
    ref = {t: _numpy_miou(samples, t, k) for t in thrs}
    best = max(ref, key=ref.get)
    # the example was built around a background level in (0.3, 0.5)
    assert res['cam/bg_thr'] == best == 0.4
    assert res['cam/mIoU'] == round(100 * ref[best], 2)
    assert ref[0.4] > ref[0.2] and ref[0.4] > ref[0.6]
    metric2 = PseudoMaskMetric(bg_thrs=[0.2])
    metric2.dataset_meta = dict(classes=('background', 'a', 'b', 'c'))
    metric2.process({}, [_sample(*s) for s in samples])
    assert np.isclose(metric2.evaluate(6)['cam/mIoU'],
                      100 * ref[0.2], atol=0.01)


def test_pseudo_mask_metric_own_background_by_hand():
    """``pseudo_scores`` (K+1 maps, background first): argmax over the
    background and the present classes, no threshold."""
    # K = 2, one 1x4 image holding class 2 only; gt = bg, bg, 2, 2
    gt = np.array([[0, 0, 2, 2]])
    pseudo = np.array([[[0.9, 0.4, 0.3, 0.1]],     # background
                       [[0.1, 0.9, 0.9, 0.9]],     # class 1: absent
                       [[0.2, 0.3, 0.6, 0.2]]])    # class 2
    # class 1 masked: pred = 0, 0 (0.4 > 0.3), 2, 2 (0.2 > 0.1)
    # -> perfect: bg IoU 2/2, class 2 IoU 2/2, class 1 absent (nan)
    s = _sample(pseudo[1:], [0.0, 1.0], gt, pseudo=pseudo)
    metric = PseudoMaskMetric(bg_thrs=[0.5])
    metric.dataset_meta = dict(classes=('background', 'a', 'b'))
    metric.process({}, [s])
    # second image, both classes present, gt = 1, 1, 2, 0
    gt2 = np.array([[1, 1, 2, 0]])
    # pred = 1, 1, 1, 2 (bg 0.9 loses to class 1's 0.95)
    pseudo2 = np.array([[[0.9, 0.1, 0.1, 0.3]],
                        [[0.95, 0.8, 0.7, 0.1]],
                        [[0.0, 0.1, 0.6, 0.4]]])
    metric.process({}, [_sample(pseudo2[1:], [1.0, 1.0], gt2,
                                pseudo=pseudo2)])
    res = metric.evaluate(2)
    # totals: gt bg {0,0,0} -> pred {0,0,2}; gt 1 {1,1} -> {1,1};
    # gt 2 {2,2,2} -> {2,2,1}
    # bg: inter 2, union 3 + 2 - 2 = 3; class 1: inter 2, union 2 + 3 - 2
    # = 3; class 2: inter 2, union 3 + 3 - 2 = 4
    assert res['cam/own_mIoU'] == round(100 * (2 / 3 + 2 / 3 + 2 / 4) / 3,
                                        2)
    assert 'cam/mIoU' in res and res['cam/bg_thr'] == 0.5
    # mixing predictions with and without pseudo_scores is an error
    metric2 = PseudoMaskMetric(bg_thrs=[0.5])
    metric2.process({}, [s])
    with pytest.raises(ValueError, match='pseudo_scores'):
        metric2.process({}, [_sample(pseudo[1:], [0.0, 1.0], gt)])


def test_label_masked_iou():
    gt = torch.tensor([[0, 1], [2, 2]])
    logits = torch.zeros(3, 2, 2)
    logits[1] = torch.tensor([[0.0, 5.0], [5.0, 5.0]])  # class 1 everywhere
    logits[2] = torch.tensor([[0.0, 0.0], [4.0, 4.0]])
    logits[0, 0, 0] = 1.0
    # the image holds classes 2 only: masking class 1 recovers class 2
    s = _sample(torch.zeros(2, 2, 2), [0.0, 1.0], gt, logits)
    metric = LabelMaskedIoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=('background', 'a', 'b'))
    metric.process({}, [s])
    res = metric.evaluate(1)
    # pred = [[0, 0], [2, 2]]: bg IoU 1/2, class 1 IoU 0/1, class 2 IoU 1
    assert np.isclose(res['label_masked/mIoU'], 100 * (0.5 + 0 + 1) / 3,
                      atol=0.01)


def test_pseudo_mask_metric_on_the_synthetic_set_matches_numpy(toy_root):
    """A model's CAMs on real toy images (not hand-made arrays) through the
    metric, against the numpy reference."""
    from mmengine.dataset import pseudo_collate
    from mmseg.registry import MODELS

    from mmseg_wsss.datasets import WSSSToyDataset

    from .conftest import tiny_cam_model_cfg
    ds = WSSSToyDataset(
        data_root=toy_root, ann_file='ImageSets/Segmentation/train.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        test_mode=True,
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadWSSSAnnotations'),
                  dict(type='PackWSSSInputs')])
    model = MODELS.build(tiny_cam_model_cfg()).eval()
    outs = []
    with torch.no_grad():
        for i in range(6):
            outs.append(model.test_step(pseudo_collate([ds[i]]))[0])
    samples = [(o.cams.data.numpy().astype(np.float64),
                o.gt_img_labels.numpy(), o.gt_sem_seg.data[0].numpy())
               for o in outs]
    thrs = [0.3, 0.5, 0.7]
    metric = PseudoMaskMetric(bg_thrs=thrs)
    metric.dataset_meta = ds.metainfo
    metric.process({}, [o.to_dict() for o in outs])
    res = metric.evaluate(6)
    ref = {t: _numpy_miou(samples, t, 4) for t in thrs}
    best = max(ref, key=ref.get)
    assert res['cam/bg_thr'] == best
    assert res['cam/mIoU'] == round(100 * ref[best], 2)


def test_subset_metric_reports_each_subset_like_its_own_metric(tmp_path):
    """SubsetMetric gives the whole set under the inner metric's own names
    and each subset under ``<name>/``, each equal to the inner metric run
    on just those images; ids may come from a text file; a subset that
    matches no image is an error, not a silent 0."""
    from mmseg_wsss.evaluation import SubsetMetric
    rng = np.random.default_rng(1)
    k, samples = 3, []
    for i in range(6):
        gt = rng.integers(0, k + 1, (6, 8))
        cams = rng.uniform(0.0, 1.0, (k, 6, 8))
        labels = np.ones(k, np.float32)
        s = _sample(cams, labels, gt)
        s['img_path'] = f'/data/JPEGImages/im{i}.jpg'
        samples.append(s)
    meta = dict(classes=('background', 'a', 'b', 'c'))
    (tmp_path / 'b.txt').write_text('im1\nim4\n\n')
    metric = SubsetMetric(
        metric=dict(type='PseudoMaskMetric', bg_thrs=[0.3, 0.6]),
        subsets=dict(a=['im0', 'im2', 'im3'], b=str(tmp_path / 'b.txt')))
    metric.dataset_meta = meta
    metric.process({}, samples)
    res = metric.evaluate(len(samples))

    def alone(idx):
        m = PseudoMaskMetric(bg_thrs=[0.3, 0.6])
        m.dataset_meta = meta
        m.process({}, [samples[i] for i in idx])
        return m.evaluate(len(idx))

    for prefix, idx in (('', range(6)), ('a/', [0, 2, 3]), ('b/', [1, 4])):
        for key, val in alone(idx).items():
            assert res[prefix + key] == val, (prefix, key)
    assert len({res['cam/mIoU'], res['a/cam/mIoU'], res['b/cam/mIoU']}) == 3
    bad = SubsetMetric(metric=dict(type='PseudoMaskMetric'),
                       subsets=dict(c=['not_an_image']))
    bad.dataset_meta = meta
    bad.process({}, samples)
    with pytest.raises(ValueError, match="subset.*'c'.*file names"):
        bad.evaluate(len(samples))
    with pytest.raises(FileNotFoundError, match='one id per line'):
        SubsetMetric(metric=dict(type='PseudoMaskMetric'),
                     subsets=dict(c=str(tmp_path / 'missing.txt')))
