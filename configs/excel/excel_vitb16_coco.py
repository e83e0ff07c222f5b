# ExCEL on COCO 2014 (clip.md §4; the paper's figure, not ours: COCO val
# 50.3; the authors' log stops near 80k at 48.1): the WeCLIP COCO data and
# schedule with ExCEL's parts; the authors' COCO bank has 224 clusters
# (--classes coco --clusters 224 for one of your own).
_base_ = ['../weclip/weclip_vitb16_coco.py']
model = dict(
    type='ExCEL',
    backbone=dict(out_indices=tuple(range(12))),
    attribute_bank='pretrain/excel_coco_bank_224.pth',
    decode_head=dict(num_levels=12),
    train_cfg=dict(
        _delete_=True,
        rfm_start_iter=14000,
        lvc_start_iter=14000,
        aff_self_iter=24000,
        surgery_blocks=5,
        attr_keep=0.9,
        rfm_last=6,
        box_thr=0.79,
        bg_power=1.0,
        par=dict(num_iter=20, w1=0.3, w2=0.01),
        aff_radius=8,
        aff_weight=0.1),
    test_cfg=dict(scales=(0.7, 1.0, 1.2, 1.5), flip=True))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(320, 320), keep_ratio=False),
    dict(type='LoadWSSSAnnotations'),
    dict(type='PackWSSSInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=1e-4))
