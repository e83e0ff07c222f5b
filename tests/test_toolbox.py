"""The WSSS toolbox: DenseCRF, pseudo-label export, benchmark."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import DATASETS, MODELS
from PIL import Image

from mmseg_wsss.evaluation import DenseCRF, cam_probs
from mmseg_wsss.apis.benchmark import (make_batch, run_benchmark,
                                        supervised_model_cfg)

from .conftest import REPO, free_port, tiny_cam_model_cfg
from .test_runner import ENV, run, write_cfg


# ------------------------------------------------------------------ CRF
def _two_region_case():
    """Left half dark, right half bright; the probabilities favour the
    right class everywhere but a noisy patch of the left half says the
    wrong class at 0.55."""
    h, w = 24, 32
    img = np.zeros((h, w, 3), np.uint8)
    img[:, w // 2:] = 230
    truth = np.zeros((h, w), np.int64)
    truth[:, w // 2:] = 1
    probs = np.where(truth[None] == np.arange(2)[:, None, None], 0.8, 0.2)
    probs[:, 4:12, 3:10] = np.array([0.45, 0.55])[:, None, None]
    return img, probs.astype(np.float32), truth


def test_crf_fixes_label_noise_inside_a_uniform_region():
    img, probs, truth = _two_region_case()
    assert (probs.argmax(0) != truth).sum() == 8 * 7
    out = DenseCRF(iterations=5)(img, probs)
    assert out.shape == probs.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(0), 1, atol=1e-4)
    np.testing.assert_array_equal(out.argmax(0), truth)


def test_crf_rejects_bad_shapes_and_names_the_package_when_missing(
        monkeypatch):
    img, probs, _ = _two_region_case()
    with pytest.raises(ValueError, match=r'\(C, H, W\)'):
        DenseCRF()(img, probs[:, :10])
    with pytest.raises(ValueError, match=r'\(H, W, 3\)'):
        DenseCRF()(img[..., 0], probs)
    monkeypatch.setitem(sys.modules, 'pydensecrf', None)
    monkeypatch.setitem(sys.modules, 'pydensecrf.densecrf', None)
    with pytest.raises(ImportError, match='pip install pydensecrf2'):
        DenseCRF()


def test_cam_probs_by_hand():
    cams = torch.tensor([[[0.9, 0.1]], [[0.6, 0.0]]])  # K=2, 1x2
    p = cam_probs(cams, 0.3, torch.tensor([1.0, 0.0]))
    # pixel 0: (0.3, 0.9, 0) / 1.2 ; pixel 1: (0.3, 0.1, 0) / 0.4
    torch.testing.assert_close(
        p[:, 0, 0], torch.tensor([0.25, 0.75, 0.0]))
    torch.testing.assert_close(
        p[:, 0, 1], torch.tensor([0.75, 0.25, 0.0]))


def test_test_cfg_crf_switch_refines_predictions():
    cfg = tiny_cam_model_cfg()
    model = MODELS.build(cfg).eval()
    img = torch.randint(0, 255, (3, 64, 48), dtype=torch.uint8)
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(ori_shape=(64, 48),
                                         img_shape=(64, 48)))
    data = dict(inputs=[img], data_samples=[sample])
    with torch.no_grad():
        plain = model.test_step(data)[0].seg_logits.data
    model.test_cfg['crf'] = True  # the defaults (as from --cfg-options)
    sample = SegDataSample(metainfo=dict(ori_shape=(64, 48),
                                         img_shape=(64, 48)))
    with torch.no_grad():
        out = model.test_step(dict(inputs=[img], data_samples=[sample]))[0]
    refined = out.seg_logits.data
    assert refined.shape == plain.shape == (5, 64, 48)
    # refined maps are probabilities; the plain ones are logits
    torch.testing.assert_close(refined.sum(0), torch.ones(64, 48),
                               atol=1e-3, rtol=0)
    assert (refined >= 0).all()
    assert not torch.allclose(refined, plain.softmax(0), atol=1e-3)
    torch.testing.assert_close(out.pred_sem_seg.data[0],
                               refined.argmax(0))


# ------------------------------------------------------ pseudo-label export
@pytest.fixture(scope='module')
def export_setup(tmp_path_factory, toy_root):
    tmp = tmp_path_factory.mktemp('export')
    cfg_path = write_cfg(tmp, toy_root, max_iters=4)
    cfg = Config.fromfile(cfg_path)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = str(tmp / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    return cfg_path, ckpt, tmp


def _export(cfg_path, ckpt, out, *extra):
    return run([
        sys.executable, 'tools/gen_pseudo_labels.py', cfg_path, ckpt, '--out',
        out, '--limit', '8', '--workers', '1', '--scales', '1.0', *extra
    ])


def _miou_by_hand(pred_dir, gt_dir, ids, n):
    conf = np.zeros((n, n), np.int64)
    for i in ids:
        p = np.array(Image.open(osp.join(pred_dir, i + '.png')))
        g = np.array(Image.open(osp.join(gt_dir, i + '.png')))
        for a in range(n):
            for b in range(n):
                conf[a, b] += ((g == a) & (p == b)).sum()
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    return np.nanmean(np.where(union > 0, inter / np.maximum(union, 1),
                               np.nan)) * 100


def test_export_reads_back_in_stock_mmseg_voc_and_reports_miou(
        export_setup, toy_root):
    cfg_path, ckpt, tmp = export_setup
    out = str(tmp / 'pl')
    log = _export(cfg_path, ckpt, out)
    ids = open(osp.join(out, 'ImageSets/Segmentation/train.txt')).read(
    ).split()
    assert len(ids) == 8
    summary = json.load(open(osp.join(out, 'summary.json')))
    expect = _miou_by_hand(
        osp.join(out, 'SegmentationClass'),
        osp.join(toy_root, 'SegmentationClass'), ids, 5)
    assert summary['mIoU'] == pytest.approx(expect, abs=0.01)
    assert f"{summary['mIoU']:.2f}" in log
    # palette PNGs whose values are the class indices ...
    png = Image.open(osp.join(out, 'SegmentationClass', ids[0] + '.png'))
    assert png.mode == 'P'
    # ... that mmseg's stock VOC dataset and LoadAnnotations read directly
    ds = DATASETS.build(
        dict(
            type='PascalVOCDataset',
            data_root=out,
            ann_file='ImageSets/Segmentation/train.txt',
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')
            ]))
    assert len(ds) == 8
    item = ds[0]
    mask = item['data_samples'].gt_sem_seg.data[0].numpy()
    np.testing.assert_array_equal(mask, np.array(png))
    assert item['inputs'].shape[-2:] == mask.shape
    assert mask.max() <= 4


def test_stage2_config_trains_on_an_export_and_predicts_full_size(
        export_setup):
    """configs/stage2: mmseg's EncoderDecoder learns from an export root
    through the config's own pipeline, and predicts at the original size
    of an image that is not a multiple of the patch size."""
    from mmengine.runner import Runner
    from mmseg.structures import SegDataSample
    cfg_path, ckpt, tmp = export_setup
    out = str(tmp / 'pl_stage2')
    _export(cfg_path, ckpt, out)
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'stage2', 'largefov_dinov2s_coco128_pl.py'))
    model_cfg = cfg.model
    # whole-image inference pads to the patch size
    assert model_cfg.data_preprocessor.test_cfg.size_divisor == \
        model_cfg.backbone.patch_size
    model_cfg.backbone.update(img_size=64, patch_size=8, embed_dims=32,
                              num_layers=3, num_heads=2, mlp_ratio=2)
    model_cfg.backbone.pop('pretrained')
    model_cfg.data_preprocessor.update(size=(64, 64),
                                       test_cfg=dict(size_divisor=8))
    model_cfg.decode_head.update(in_channels=32, channels=16, dilation=2,
                                 num_classes=5)
    loader = cfg.train_dataloader
    loader.update(batch_size=4, num_workers=0, persistent_workers=False)
    loader.dataset.update(type='WSSSToyDataset', data_root=out,
                          ann_file='ImageSets/Segmentation/train.txt')
    for t in loader.dataset.pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (64, 64)
        if t['type'] == 'RandomCropPad':
            t['crop_size'] = (64, 64)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    batch = next(iter(Runner.build_dataloader(loader, seed=0)))
    masks = torch.cat([s.gt_sem_seg.data for s in batch['data_samples']])
    assert set(masks.unique().tolist()) <= {0, 1, 2, 3, 4, 255}
    assert ((masks > 0) & (masks < 255)).any()  # the exported foreground
    opt = torch.optim.AdamW(model.decode_head.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        data = model.data_preprocessor(batch, True)
        loss = model.loss(data['inputs'], data['data_samples'])
        total = sum(v for k, v in loss.items() if 'loss' in k)
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(float(total))
    assert losses[-1] < 0.8 * losses[0]
    model.eval()
    img = torch.randint(0, 256, (3, 45, 60), dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(ori_shape=(45, 60),
                                         img_shape=(45, 60)))
    with torch.no_grad():
        pred = model.test_step(dict(inputs=[img], data_samples=[sample]))
    assert pred[0].pred_sem_seg.data.shape == (1, 45, 60)
    assert pred[0].seg_logits.data.shape == (5, 45, 60)


def test_export_resumes_without_redoing_finished_files(export_setup):
    cfg_path, ckpt, tmp = export_setup
    out = str(tmp / 'pl_resume')
    _export(cfg_path, ckpt, out)
    seg = osp.join(out, 'SegmentationClass')
    files = sorted(os.listdir(seg))
    first = json.load(open(osp.join(out, 'summary.json')))['mIoU']
    # an interrupted run: two files missing, one half-written temp file
    for f in files[:2]:
        os.remove(osp.join(seg, f))
    open(osp.join(seg, files[0] + '.tmp.png'), 'wb').write(b'\x89PNG')
    stamps = {f: os.stat(osp.join(seg, f)).st_mtime_ns for f in files[2:]}
    log = _export(cfg_path, ckpt, out)
    assert '6 already exported (kept), 2 to do' in log
    assert {f: os.stat(osp.join(seg, f)).st_mtime_ns
            for f in files[2:]} == stamps
    assert all(osp.isfile(osp.join(seg, f)) for f in files[:2])
    assert json.load(open(osp.join(out, 'summary.json')))['mIoU'] == first
    # resuming with other settings is refused instead of mixing exports
    with pytest.raises(AssertionError, match='other settings'):
        _export(cfg_path, ckpt, out, '--crf')
    # ... or the feature-affinity refinement switched on (--feat-refine
    # sets the model's test_cfg.feat_refine: the CAMs the export reads) ...
    with pytest.raises(AssertionError,
                       match=r'model\.test_cfg\.feat_refine: \S+ -> True'):
        _export(cfg_path, ckpt, out, '--feat-refine')
    # ... and so is another model config (a --cfg-options override) ...
    with pytest.raises(AssertionError,
                       match=r'model\.test_cfg\.bg_thr: 0\.45 -> 0\.3'):
        _export(cfg_path, ckpt, out, '--cfg-options',
                'model.test_cfg.bg_thr=0.3')
    # ... or other weights saved under the same path
    other = str(tmp / 'model_other.pth')
    state = torch.load(ckpt, weights_only=True)
    state['state_dict'] = {k: v + 1 if v.is_floating_point() else v
                           for k, v in state['state_dict'].items()}
    torch.save(state, other)
    os.replace(ckpt, ckpt + '.orig')
    os.replace(other, ckpt)
    try:
        with pytest.raises(AssertionError, match='checkpoint_sha256'):
            _export(cfg_path, ckpt, out)
    finally:
        os.replace(ckpt + '.orig', ckpt)
    settings = json.load(open(osp.join(out, 'export_settings.json')))
    assert settings['model']['type'] == 'CAMSegmentor'
    assert len(settings['checkpoint_sha256']) == 64


def test_export_crf_changes_labels(export_setup):
    cfg_path, ckpt, tmp = export_setup
    plain, crf = str(tmp / 'pl_plain'), str(tmp / 'pl_crf')
    _export(cfg_path, ckpt, plain)
    _export(cfg_path, ckpt, crf, '--crf')
    s = json.load(open(osp.join(crf, 'summary.json')))
    assert s['crf'] == {}
    name = sorted(os.listdir(osp.join(plain, 'SegmentationClass')))[0]
    a = np.array(Image.open(osp.join(plain, 'SegmentationClass', name)))
    b = np.array(Image.open(osp.join(crf, 'SegmentationClass', name)))
    assert a.shape == b.shape and (a != b).any()


def test_export_source_own_writes_apcs_label_merged_masks(
        tmp_path, toy_root, export_setup):
    """``--source own``: APC's own pseudo-masks (the label merge of its patch
    softmax), the same labels ``predict``'s ``pseudo_scores`` give; a model
    without them is refused with a clear message."""
    from mmengine.dataset import pseudo_collate
    base = osp.join(REPO, 'configs', 'apc', 'apc_tiny_toy.py')
    cfg_path = tmp_path / 'apc.py'
    cfg_path.write_text(f'''
_base_ = [{base!r}]
train_dataloader = dict(num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={toy_root!r}))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root={toy_root!r}))
''')
    cfg = Config.fromfile(str(cfg_path))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = str(tmp_path / 'apc.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    out = str(tmp_path / 'own')
    _export(str(cfg_path), ckpt, out, '--source', 'own')
    ids = open(osp.join(out, 'ImageSets/Segmentation/train.txt')).read(
    ).split()
    ds = DATASETS.build(dict(cfg.train_dataloader.dataset, test_mode=True,
                             pipeline=cfg.val_dataloader.dataset.pipeline))
    model.eval()
    seen = set()
    for i, img_id in enumerate(ids[:3]):
        with torch.no_grad():
            pred = model.test_step(pseudo_collate([ds[i]]))[0]
        labels = pred.gt_img_labels
        scores = pred.pseudo_scores.data.clone()
        scores[~torch.cat([torch.ones(1), labels]).bool()] = -1
        png = np.array(Image.open(
            osp.join(out, 'SegmentationClass', img_id + '.png')))
        # the export stores float16 probabilities: near-ties may differ
        assert (png == scores.argmax(0).numpy()).mean() > 0.995
        present = {0} | {k + 1 for k in range(4) if labels[k]}
        assert set(np.unique(png).tolist()) <= present
        seen |= set(np.unique(png).tolist())
    assert len(seen) > 1  # not all background
    cam_cfg, cam_ckpt, _ = export_setup
    proc = subprocess.run([
        sys.executable, 'tools/gen_pseudo_labels.py', cam_cfg, cam_ckpt,
        '--out', str(tmp_path / 'refused'), '--limit', '1', '--source', 'own'
    ], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert '--source own needs a model with its own pseudo-masks' in \
        proc.stderr


# ------------------------------------------------------ pseudo-label probe
def _probe_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'probe_pseudo_labels', osp.join(REPO, 'tools',
                                        'probe_pseudo_labels.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_probe_scoring_by_hand():
    probe = _probe_module()
    gt = torch.tensor([[0, 0, 1, 1], [0, 2, 2, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [255, 2, 0, 2]])
    conf = probe.confusion(pred, gt, 3)
    # pixels kept: neither is 255 -> 6 pixels
    assert conf.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    iou, miou = probe.iou_from_confusion(conf)
    # bg 1/(2+2-1)=1/3, class 1 2/(2+3-2)=2/3, class 2 1/(2+1-1)=1/2
    torch.testing.assert_close(iou, torch.tensor([100 / 3, 200 / 3, 50.],
                                                 dtype=torch.float64))
    assert miou == pytest.approx(50.0)
    assert probe.fg_share(gt) == pytest.approx(4 / 7)
    pipe = [dict(type='LoadImageFromFile'), dict(type='RandomCropPad',
                                                 crop_size=8)]
    assert [t['type'] for t in probe.with_masks(pipe)] == [
        'LoadImageFromFile', 'LoadWSSSAnnotations', 'RandomCropPad']
    assert len(pipe) == 2  # the config's pipeline is left alone


def test_probe_scores_pseudo_labels_and_trains_decoders(export_setup,
                                                        tmp_path):
    cfg_path, ckpt, _ = export_setup
    probe = _probe_module()
    res = probe.main([cfg_path, ckpt, '--batches', '2', '--steps', '4',
                      '--thrs', '0.3', '0.6', '--out', str(tmp_path),
                      '--cfg-options', 'model.train_cfg.low_thr=0.35',
                      'model.train_cfg.high_thr=0.65'])
    assert json.load(open(tmp_path / 'probe.json')) == json.loads(
        json.dumps(res))
    # one-threshold rows and the config's own (low, high) pair; the aux
    # head's CAM at the one-threshold rows (the baseline has no aux pair)
    assert res['crops'] == 8 and res['net'] == 'on' and set(
        res['pseudo_labels']) == {'raw@0.3', 'raw@0.6', 'raw@train',
                                  'aux@0.3', 'aux@0.6'}
    own = res['pseudo_labels']['raw@train']
    assert (own['low_thr'], own['high_thr']) == (0.35, 0.65)
    assert own['coverage'] < 1.0 == res['pseudo_labels']['raw@0.3'][
        'coverage']  # the band between the two thresholds is ignored
    assert res['best'] != 'raw@train'
    low, high = res['pseudo_labels']['raw@0.3'], res['pseudo_labels'][
        'raw@0.6']
    # a higher background threshold never labels more foreground
    assert high['fg_share'] <= low['fg_share']
    assert low['gt_fg_share'] == high['gt_fg_share'] > 0
    assert len(low['per_class']) == 5 and res['best'] in res['pseudo_labels']
    vals = [v for v in low['per_class'] if v is not None]
    assert np.mean(vals) == pytest.approx(low['mIoU'], abs=0.01)
    for name in ('masks', 'best_pseudo_label'):
        for mode in ('label_free', 'label_masked'):
            assert 0 <= res['decoders'][name][mode] <= 100


def test_probe_scores_the_network_that_makes_the_pseudo_labels():
    """CoSA's pseudo-labels come from its assignment network (main and aux
    CAM): the probe scores those by default, the online network's on
    request, and the training thresholds per CAM kind."""
    from .test_cosa import _build as build_cosa
    probe = _probe_module()
    model = build_cosa().eval()
    x = torch.rand(2, 3, 64, 64) * 255
    labels = torch.tensor([[1., 0, 1, 0], [0, 1, 0, 0]])
    with torch.no_grad():
        model.cam_head.classifier.weight.mul_(-3.0)  # ON moves away from AN
    assert probe.pick_net(model)[0] == 'an'
    assert probe.pick_net(model, 'on') == ('on', model)
    an = probe.train_cams(model, model.assignment_net, x, labels, True)
    on = probe.train_cams(model, model, x, labels, True)
    assert set(an) == {'raw', 'refined', 'aux'}
    assert an['raw'].shape == (2, 4, 64, 64)
    assert not torch.allclose(an['raw'], on['raw'])
    torch.testing.assert_close(an['aux'], on['aux'])  # aux head unchanged
    model.update_assignment_net(momentum=0.0)  # AN <- ON
    again = probe.train_cams(model, model.assignment_net, x, labels, True)
    for kind in an:
        torch.testing.assert_close(again[kind], on[kind])
    # the refinement is not the identity here
    assert not torch.allclose(on['refined'], on['raw'])
    pairs = probe.train_pairs(dict(low_thr=0.2, high_thr=0.6,
                                   aux_low_thr=0.25, aux_high_thr=0.7))
    assert pairs == {'raw': (0.2, 0.6), 'refined': (0.2, 0.6),
                     'aux': (0.25, 0.7)}
    assert probe.train_pairs(dict(low_thr=0.3)) == {}
    cam_model = MODELS.build(tiny_cam_model_cfg())
    with pytest.raises(SystemExit, match='--net on'):
        probe.pick_net(cam_model, 'an')


# ------------------------------------------------------------ benchmark
def test_benchmark_reports_both_models_and_their_ratio():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'cosa', 'cosa_tiny_toy.py'))
    cfg.model.backbone.update(num_layers=2, embed_dims=32, num_heads=2)
    for head in ('cam_head', 'aux_cam_head'):
        cfg.model[head].in_channels = 32
    cfg.model.decode_head.update(in_channels=32, channels=16)
    res = run_benchmark(cfg, batch_size=2, crop_size=(64, 64), steps=2,
                        warmup=1, infer_images=1, paper_scales=True)
    assert res['model'] == 'CoSA' and res['batch_size'] == 2
    for k in ('wsss', 'supervised'):
        assert res[k]['step_s_median'] > 0
        assert res[k]['images_per_s'] > 0
        assert res[k]['memory_kind'] == 'cpu_peak_rss_increase'
    assert res['ratio']['step_time'] == pytest.approx(
        res['wsss']['step_s_median'] / res['supervised']['step_s_median'])
    # the compute ideal: CoSA's step does more than the supervised one (the
    # AN passes at 2 scales x flip), and more again at the papers' 3 scales
    ideal = res['ratio']['ideal']
    assert ideal == pytest.approx(res['wsss']['gflops_per_step'] /
                                  res['supervised']['gflops_per_step'])
    assert 1.5 < ideal < res['ratio_paper_scales']['ideal']
    assert 'measured' in res['ratio']['reads']
    json.dumps(res)  # JSON-serialisable


def test_benchmark_never_loads_pretrained_weights():
    """The GPU check benchmarks configs whose weights (a local file, a
    model-zoo URL) are not there: the benchmark drops every source."""
    from mmseg_wsss.apis.benchmark import without_pretrained
    for path in ('configs/cosa/cosa_vitb_voc.py',
                 'configs/cosa/cosa_swin-b_voc.py'):
        cfg = Config.fromfile(osp.join(REPO, path))
        model = cfg.model.to_dict()
        dropped = without_pretrained(model)
        assert dropped, path
        text = str(model)
        assert 'Pretrained' not in text and '.pth' not in text, path
        MODELS.build(model).init_weights()  # nothing to fetch


def test_flop_counter_counts_fused_cpu_attention_like_explicit():
    """The fused CPU attention kernel is counted with torch's formulas for
    the fused CUDA kernels (torch registers none for the CPU one, which
    would count 0): its forward is the explicit matmuls' forward, its
    backward one matmul more (it recomputes QK^T)."""
    from mmseg_wsss.apis.benchmark import flop_counter
    q, k, v = (torch.randn(2, 3, 10, 8, requires_grad=True)
               for _ in range(3))
    with flop_counter() as fused:
        torch.nn.functional.scaled_dot_product_attention(q, k, v).sum(
        ).backward()
    with flop_counter() as explicit:
        a = ((q * 8**-0.5) @ k.transpose(-2, -1)).softmax(-1)
        (a @ v).sum().backward()
    bhnnd = 2 * 3 * 10 * 10 * 8
    # explicit: forward QK^T and AV (2 matmuls of 2*BHNNd); backward 4
    assert explicit.get_total_flops() == (2 + 4) * 2 * bhnnd
    assert fused.get_total_flops() == (2 + 5) * 2 * bhnnd


def test_benchmark_batch_and_supervised_reference():
    b = make_batch(3, (16, 24), 4, views=['weak', 'strong'])
    assert len(b['inputs']) == 3
    assert torch.equal(b['inputs'][0]['weak'], b['inputs'][0]['strong'])
    for s in b['data_samples']:
        assert 1 <= s.gt_img_labels.sum() <= 3
        assert s.gt_sem_seg.data.shape == (1, 16, 24)
    sup = supervised_model_cfg(tiny_cam_model_cfg())
    assert sup['type'] == 'EncoderDecoder'
    assert sup['decode_head']['loss_decode']['type'] == 'CrossEntropyLoss'
    model = MODELS.build(sup)
    assert isinstance(model.backbone, MODELS.get('WSSSViT'))
    with pytest.raises(ValueError, match='decode_head'):
        supervised_model_cfg(tiny_cam_model_cfg(decode_head=False))


# ------------------------------------------------------ visualization hook
def test_cam_visualization_hook_writes_pictures_every_n_iters(
        tmp_path, toy_root):
    from types import SimpleNamespace

    from mmseg.visualization import SegLocalVisualizer

    from mmseg_wsss.engine import CAMVisualizationHook
    model = MODELS.build(tiny_cam_model_cfg()).train()
    ds = DATASETS.build(
        dict(
            type='WSSSToyDataset',
            data_root=toy_root,
            ann_file='ImageSets/Segmentation/val.txt',
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass'),
            test_mode=True,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadWSSSAnnotations'),
                dict(type='PackWSSSInputs')
            ]))
    vis = SegLocalVisualizer.get_instance(
        'test_cam_hook', vis_backends=[dict(type='LocalVisBackend')],
        save_dir=str(tmp_path))
    runner = SimpleNamespace(
        model=model, visualizer=vis, iter=0, max_iters=10, rank=0,
        val_dataloader=SimpleNamespace(dataset=ds))
    hook = CAMVisualizationHook(interval=3, indices=[0, 2])
    written = lambda: sorted(os.listdir(tmp_path / 'vis_data' / 'vis_image')) \
        if (tmp_path / 'vis_data' / 'vis_image').exists() else []  # noqa: E731
    for it in range(10):
        runner.iter = it
        hook.after_train_iter(runner, it)
    # every 3rd iteration (3, 6, 9) and the last one (10)
    assert written() == ['cam_panels_10.png', 'cam_panels_3.png',
                         'cam_panels_6.png', 'cam_panels_9.png']
    assert model.training, 'the hook restores training mode'
    pic = np.array(
        Image.open(tmp_path / 'vis_data' / 'vis_image' / 'cam_panels_3.png'))
    single = hook.draw(runner, 0)
    assert pic.shape == single.shape
    # two rows, each at least one 18-px title bar + image high
    assert pic.shape[0] >= 2 * (18 + 96)
    with pytest.raises(IndexError, match='out of range'):
        CAMVisualizationHook(indices=[99])._get_dataset(runner)
    # a model configured with feat_refine gets one more tile (the refined
    # pseudo-label); its test_cfg is left as it was
    from mmengine.dataset import pseudo_collate

    from mmseg_wsss.visualization import predict_panel
    model.eval()
    model.test_cfg['feat_refine'] = dict(beta=2.0, steps=2)
    data = pseudo_collate([ds[0]])
    meta = ds.metainfo
    plain = predict_panel(model, data, meta['classes'], meta['palette'])
    refined = predict_panel(model, data, meta['classes'], meta['palette'],
                            refine=model.test_cfg['feat_refine'])
    assert model.test_cfg['feat_refine'] == dict(beta=2.0, steps=2)
    assert refined.shape[0] == plain.shape[0]
    assert refined.shape[1] == plain.shape[1] + 192 + 2
    assert hook.draw(runner, 0).shape[1] == single.shape[1] + 192 + 2


def test_slurm_scripts_call_srun_like_mmseg(tmp_path):
    import subprocess
    stub = tmp_path / 'srun'
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    stub.chmod(0o755)
    env = dict(os.environ, PATH=f'{tmp_path}:{os.environ["PATH"]}', GPUS='8',
               GPUS_PER_NODE='4')
    out = subprocess.run(
        ['bash', 'tools/slurm_train.sh', 'part', 'job', 'cfg.py',
         '--work-dir', 'w'], cwd=REPO, env=env, capture_output=True,
        text=True, check=True).stdout.split('\n')
    assert out[:6] == ['-p', 'part', '--job-name=job', '--gres=gpu:4',
                       '--ntasks=8', '--ntasks-per-node=4']
    i = out.index('cfg.py')
    assert out[i - 1].endswith('tools/train.py')
    assert out[i + 1:i + 5] == ['--launcher', 'slurm', '--work-dir', 'w']
    out = subprocess.run(
        ['bash', 'tools/slurm_test.sh', 'part', 'job', 'cfg.py', 'c.pth',
         '--out', 'o'], cwd=REPO, env=env, capture_output=True, text=True,
        check=True).stdout.split('\n')
    i = out.index('cfg.py')
    assert out[i - 1].endswith('tools/test.py')
    assert out[i + 1:i + 6] == ['c.pth', '--launcher', 'slurm', '--out', 'o']


def test_export_two_processes_equals_one(export_setup):
    """--launcher pytorch on CPU (gloo): ranks share the ids, the confusion
    matrix is all-reduced; files and mIoU equal the single-process run."""
    cfg_path, ckpt, tmp = export_setup
    one, two = str(tmp / 'pl_one'), str(tmp / 'pl_two')
    _export(cfg_path, ckpt, one)
    log = run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
        '2', '--master_port', str(free_port()), 'tools/gen_pseudo_labels.py',
        cfg_path, ckpt, '--out', two, '--limit', '8', '--workers', '0',
        '--scales', '1.0', '--launcher', 'pytorch'
    ])
    assert '4 to do on this process' in log
    seg = 'SegmentationClass'
    names = sorted(os.listdir(osp.join(one, seg)))
    assert sorted(os.listdir(osp.join(two, seg))) == names
    for n in names:
        np.testing.assert_array_equal(
            np.array(Image.open(osp.join(one, seg, n))),
            np.array(Image.open(osp.join(two, seg, n))))
    assert json.load(open(osp.join(two, 'summary.json')))['mIoU'] == \
        json.load(open(osp.join(one, 'summary.json')))['mIoU']


def test_dynamic_threshold_benchmark_reports_both_fits():
    from mmseg_wsss.apis.benchmark import bench_dynamic_threshold
    res = bench_dynamic_threshold(sizes=(10_000, 100_000), calls=2)
    for fit in ('samples', 'histogram'):
        assert set(res[fit]) == {10_000, 100_000, 'ratio_100k_10k'}
        assert all(v > 0 for v in res[fit].values())
