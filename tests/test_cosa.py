import copy

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

from .conftest import tiny_cam_model_cfg
from .test_segmentors import _batch, _toy_ds

COSA_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.5, 1.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropPad', crop_size=(64, 64)),
    dict(type='StrongPhotometricView'),
    dict(type='PackWSSSInputs'),
]


def tiny_cosa_cfg(warmup_iters=0, **kw):
    cfg = tiny_cam_model_cfg(warmup_iters=warmup_iters)
    cfg.update(type='CoSA', momentum=0.9, **kw)
    cfg['decode_head']['loss_decode']['loss_weight'] = 1.0
    cfg['train_cfg'].update(cam_scales=(1.0, ))
    return cfg


def _build(**kw):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cosa_cfg(**kw))
    model.init_weights()
    return model


def test_an_starts_as_copy_and_ema_update_is_exact():
    model = _build()
    on = dict(model.backbone.named_parameters())
    an = dict(model.assignment_net['backbone'].named_parameters())
    assert all(torch.equal(on[k], an[k]) for k in on)
    assert not any(p.requires_grad for p in model.assignment_net.parameters())
    before = {k: v.clone() for k, v in an.items()}
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(1.0)
    model.update_assignment_net()  # m = 0.9
    for k in on:
        assert torch.allclose(an[k], 0.9 * before[k] + 0.1 * on[k], atol=1e-6)
    assert int(model.an_updates) == 1
    assert model.assignment_net.training is False
    model.train()
    assert model.assignment_net.training is False


def test_optimizer_excludes_assignment_net():
    model = _build()
    wrapper = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type='TrainableOnlyOptimWrapperConstructor',
             optim_wrapper_cfg=dict(type='OptimWrapper',
                                    optimizer=dict(type='AdamW', lr=1e-3)),
             paramwise_cfg=dict(custom_keys={'cam_head': dict(lr_mult=10)})))
    ow = wrapper(model)
    in_opt = {id(p) for g in ow.optimizer.param_groups for p in g['params']}
    assert not any(id(p) in in_opt for p in model.assignment_net.parameters())
    assert all(id(p) in in_opt for p in model.backbone.parameters())


def test_cosa_trains_past_warmup_and_losses_fall(toy_root):
    model = _build(warmup_iters=3)
    ds = _toy_ds(toy_root, COSA_PIPELINE)
    batch = _batch(ds, range(8))
    assert set(batch['inputs'][0]) == {'weak', 'strong'}
    wrapper = OptimWrapper(torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=2e-3))
    hub = MessageHub.get_current_instance()
    history = []
    for it in range(25):
        hub.update_info('iter', it)
        log = model.train_step(batch, wrapper)
        model.update_assignment_net()  # what AssignmentNetEMAHook does
        history.append({k: float(v) for k, v in log.items()})
    assert set(history[0]) == {'loss', 'loss_cls', 'loss_cls_aux'}
    post = history[3:]
    keys = {'loss_c2s', 'loss_s2c', 'loss_csc', 'tau_low', 'tau_high',
            'pl_fg_ratio'}
    assert keys <= set(post[0])
    assert all(torch.isfinite(torch.tensor(list(h.values()))).all()
               for h in post)
    assert post[-1]['loss_c2s'] < 0.8 * post[0]['loss_c2s']
    assert post[-1]['loss_cls'] < post[0]['loss_cls']
    assert all(0 < h['tau_low'] < h['tau_high'] < 1 for h in post)


def test_switches_turn_components_off(toy_root):
    model = _build(raw=dict(enabled=False),
                   dynamic_threshold=dict(enabled=False), loss_s2c=None,
                   loss_csc=None)
    ds = _toy_ds(toy_root, COSA_PIPELINE)
    data = model.data_preprocessor(_batch(ds, range(4)), True)
    model.update_assignment_net()
    MessageHub.get_current_instance().update_info('iter', 5)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert 'loss_s2c' not in losses and 'loss_csc' not in losses
    assert float(losses['tau_low']) == pytest.approx(0.25)
    assert float(losses['tau_high']) == pytest.approx(0.7)


def test_missing_ema_hook_is_loud(toy_root):
    model = _build()
    ds = _toy_ds(toy_root, COSA_PIPELINE)
    data = model.data_preprocessor(_batch(ds, range(2)), True)
    MessageHub.get_current_instance().update_info('iter', 10)
    with pytest.raises(RuntimeError, match='AssignmentNetEMAHook'):
        model.loss(data['inputs'], data['data_samples'])


def test_predict_with_an_or_on(toy_root):
    from .test_segmentors import TEST_PIPELINE
    model = _build()
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(0.5)  # ON now differs from AN
    model.eval()
    ds = _toy_ds(toy_root, TEST_PIPELINE, test_mode=True)
    batch = _batch(ds, [0])
    with torch.no_grad():
        an_out = model.test_step(copy.deepcopy(batch))[0].seg_logits.data
        model.test_cfg['predict_net'] = 'on'
        on_out = model.test_step(copy.deepcopy(batch))[0].seg_logits.data
    assert not torch.allclose(an_out, on_out)
    model.test_cfg['predict_net'] = 'student'
    with pytest.raises(ValueError, match='predict_net'):
        model.test_step(batch)


def test_c2s_aux_weight_switches_the_aux_cam_term(toy_root):
    batch = _batch(_toy_ds(toy_root, COSA_PIPELINE), range(4))

    def c2s(a, perturb_aux=False):
        model = _build(loss_s2c=None, loss_csc=None)
        model.train_cfg['c2s_aux_weight'] = a
        data = model.data_preprocessor(copy.deepcopy(batch), True)
        model.update_assignment_net()
        if perturb_aux:
            with torch.no_grad():
                for p in model.assignment_net['aux_cam_head'].parameters():
                    p.normal_(0, 3)
        MessageHub.get_current_instance().update_info('iter', 5)
        torch.manual_seed(1)
        return float(model.loss(data['inputs'],
                                data['data_samples'])['loss_c2s'])

    losses = {a: c2s(a) for a in (0.0, 0.5, 1.0)}
    # linear in a: the default 1/2 is the mean of main-only and aux-only
    assert losses[0.5] == pytest.approx((losses[0.0] + losses[1.0]) / 2,
                                        rel=1e-4)
    # the aux CAM reaches L_c2s at a = 1/2, not at a = 0
    assert c2s(0.0, perturb_aux=True) == pytest.approx(losses[0.0],
                                                       rel=1e-6)
    # (an untrained decoder: every CE is near log 5, differences are small)
    assert abs(c2s(0.5, perturb_aux=True) - losses[0.5]) > 1e-4
    with pytest.raises(ValueError, match='c2s_aux_weight'):
        MODELS.build(tiny_cosa_cfg(train_cfg=dict(c2s_aux_weight=2.0)))
