# A small hierarchical backbone trained from scratch, the CPU counterpart of
# the tiny ViT on the synthetic set: mmpretrain's ConvNeXt with three stages
# (strides 4 / 8 / 16, 48 / 96 / 192 channels, ~1.1 M parameters); CAM on
# the last stage (8 x 8 at the 128 crop), aux CAM on the one before, an
# all-MLP decoder over the three stages. Not a model: configs take the parts
# with {{_base_.convnext_toy_backbone}} / {{_base_.convnext_toy_decode}}.
convnext_toy_backbone = dict(
    _delete_=True,
    type='mmpretrain.ConvNeXt',
    arch=dict(depths=[2, 2, 4], channels=[48, 96, 192]),
    out_indices=(0, 1, 2),
    gap_before_final_norm=False,
    drop_path_rate=0.1,
    wsss=dict(cam=2, aux=1, decode=(0, 1, 2), stride=16))
convnext_toy_decode = dict(
    _delete_=True,
    type='SegformerHead',
    in_channels=[48, 96, 192],
    in_index=[0, 1, 2],
    channels=128,
    num_classes=5,
    norm_cfg=dict(type='BN', requires_grad=True),
    align_corners=False,
    loss_decode=dict(
        type='BalancedCrossEntropyLoss', loss_weight=0.1,
        loss_name='loss_seg'))
