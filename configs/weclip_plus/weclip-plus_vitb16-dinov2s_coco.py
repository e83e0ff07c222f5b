# WeCLIP+ on COCO 2014 (clip.md §3): the WeCLIP COCO data and schedule
# (80k iterations, RFM over the last 10 layers, box threshold 0.7) with the
# DINOv2 branch of weclip-plus_vitb16-dinov2s_voc.py.
_base_ = ['../weclip/weclip_vitb16_coco.py']
model = dict(
    type='WeCLIPPlus',
    backbone=dict(out_indices=(10, )),
    dino=dict(
        type='WSSSViT',
        img_size=518,
        patch_size=14,
        embed_dims=384,
        num_layers=12,
        num_heads=6,
        layer_scale_init=1.0,
        aux_layer=-3,
        frozen_stages=12,
        pretrained='pretrain/dinov2_vits14_timm.pth'),
    decode_head=dict(
        _delete_=True,
        type='WeCLIPPlusHead',
        clip_channels=768,
        clip_levels=1,
        dino_channels=384,
        num_classes=81,
        loss_decode=dict(
            type='BalancedCrossEntropyLoss', loss_name='loss_seg')),
    train_cfg=dict(
        rfm_start_iter=0,
        cam_input_block=-2,
        cross_weight=0.1,
        dice_weight=1.0,
        self_label_iter=18000,
        self_label_thr=0.75,
        box_with_prior=False))
optim_wrapper = dict(optimizer=dict(lr=2e-5))
