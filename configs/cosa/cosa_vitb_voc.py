# CoSA on VOC12 + SBD with ViT-B/16 (methods.md §2), the paper's recipe:
#   tools/dist_train.sh configs/cosa/cosa_vitb_voc.py 4   (4 GPUs x 1 image)
# = the CAM baseline's config (same data, schedule, warm-up) + CoSA's parts.
# Ablations (documented switches, one at a time):
#   --cfg-options model.raw.enabled=False                 # no RAW
#   --cfg-options model.dynamic_threshold.enabled=False   # fixed thresholds
#   --cfg-options model.loss_csc=None                     # no CSC
#   --cfg-options model.loss_s2c=None                     # no SPL / L_s2c
#   --cfg-options model.test_cfg.predict_net=on           # evaluate ON
_base_ = ['../baseline/cam_vitb_voc.py']
crop_size = (448, 448)
model = dict(
    type='CoSA',
    momentum=0.9994,
    dynamic_threshold=dict(
        enabled=True, queue_size=100000, momentum=0.99, min_value=0.05),
    raw=dict(enabled=True, temperature=0.1, beta=1.0),
    loss_s2c=dict(type='SegToCAMLoss', loss_weight=0.05),
    loss_csc=dict(
        type='ContrastiveSeparationLoss', loss_weight=0.1, temperature=0.1),
    train_cfg=dict(
        aux_low_thr=0.25,
        aux_high_thr=0.7,
        spl_temperature=0.01,
        csc_confidence=0.9),
    test_cfg=dict(predict_net='an'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropPad', crop_size=crop_size),
    dict(type='RandomGaussianBlur', prob=0.5),
    dict(type='StrongPhotometricView', magnitude_range=(1, 9)),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# the assignment network: EMA after every optimizer step, not optimized
custom_hooks = [dict(type='AssignmentNetEMAHook')]
optim_wrapper = dict(constructor='TrainableOnlyOptimWrapperConstructor')
