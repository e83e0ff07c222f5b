# CoSA on the synthetic set with a small hierarchical backbone (mmpretrain
# ConvNeXt, from scratch): cosa_tiny_toy.py's CoSA parts, schedule and seed
# on cam_convnext_toy.py, so CoSA / CAM x ViT / ConvNeXt compare directly:
#   python tools/train.py configs/cosa/cosa_convnext_toy.py
_base_ = ['../baseline/cam_convnext_toy.py']
crop_size = (128, 128)
model = dict(
    type='CoSA',
    momentum=0.99,
    dynamic_threshold=dict(
        enabled=True, queue_size=50000, momentum=0.99, min_value=0.05),
    raw=dict(enabled=True, temperature=0.1, beta=1.0),
    loss_s2c=dict(type='SegToCAMLoss', loss_weight=0.05),
    loss_csc=dict(
        type='ContrastiveSeparationLoss', loss_weight=0.1, temperature=0.1),
    test_cfg=dict(predict_net='an'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropPad', crop_size=crop_size),
    dict(type='RandomGaussianBlur', prob=0.5),
    # class-preserving strong view for this set (see cosa_tiny_toy.py)
    dict(
        type='StrongPhotometricView',
        ops=('identity', 'autocontrast', 'sharpness', 'color', 'contrast',
             'posterize'),
        magnitude_range=(3, 7)),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [
    dict(type='AssignmentNetEMAHook'),
    dict(type='CAMVisualizationHook', interval=300)
]
optim_wrapper = dict(constructor='TrainableOnlyOptimWrapperConstructor')
