# CAM baseline + ACR on coco128 with DINOv2-S/14 (CPU-sized).
# The coco128 configs freeze the whole backbone on CPU; attention that cannot
# change cannot be regularised, so the last two blocks (ACR's blocks) train
# here, at 1/100 of the heads' learning rate (1e-4: the heads' 1e-2 would
# wreck pretrained blocks). Compare with the same config minus the
# regulariser (same trainable blocks, schedule and seed):
#   --cfg-options model.regularizers=[]
_base_ = ['../baseline/cam_dinov2s_coco128.py']
model = dict(
    backbone=dict(frozen_stages=10),
    regularizers=[
        dict(type='ACRLoss', loss_weight=100.0, blocks=[-2, -1])
    ])
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.01)}))
