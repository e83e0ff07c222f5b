# WeCLIP+ ("Frozen CLIP-DINO", Zhang et al., TPAMI 2025; clip.md §3): WeCLIP
# with a frozen DINOv2-S/14 beside the frozen CLIP ViT-B/16 and one decoder
# shared by both. The paper's figures, not ours: VOC test 83.9, COCO val
# 56.3 (VOC val not verified in clip.md).
#   CLIP weights and text rows: as configs/weclip/weclip_vitb16_voc.py;
#   DINOv2-S/14: pretrain/dinov2_vits14_timm.pth (docs/en/get_started.md "Shared assets";
#   timm / official DINOv2 / mmpretrain layouts load).
#   python tools/train.py configs/weclip_plus/weclip-plus_vitb16-dinov2s_voc.py
# Reference choices kept (switches in model.train_cfg): GradCAM's last block
# reads block 10's output (cam_input_block=-2; WeCLIP uses -1), no box when
# the seg prior is given (box_with_prior=False), RFM+ from the first
# iteration, self-labels above 0.75 after 18000 iterations. DINOv2-B/14:
# dino embed_dims=768, num_heads=12, decode_head.dino_channels=768.
_base_ = ['../weclip/weclip_vitb16_voc.py']
model = dict(
    type='WeCLIPPlus',
    # the decoder reads block 11's output only
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
        channels=256,
        num_layers=3,
        num_heads=8,
        mlp_dims=1024,
        num_classes=21,
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
# base lr 2e-5, decoder x10 (2e-4), the reference's
optim_wrapper = dict(optimizer=dict(lr=2e-5))
