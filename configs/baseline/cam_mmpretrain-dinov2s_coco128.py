# cam_dinov2s_coco128.py with DINOv2-S/14 through mmpretrain's
# VisionTransformer instead of WSSSViT (same weights, same everything else):
#   python tools/convert_vit_weights.py pretrain/dinov2_vits14_timm.pth \
#       pretrain/dinov2_vits14_mmpretrain.pth --to mmpretrain
#   python tools/train.py configs/baseline/cam_mmpretrain-dinov2s_coco128.py
# (or init_cfg.checkpoint = mmpretrain's own release, https://download.
# openmmlab.com/mmpretrain/v1.0/dinov2/vit-small-p14_dinov2-pre_3rdparty_
# 20230426-5641ca5a.pth). Frozen like the WSSSViT config: frozen_stages=12.
_base_ = ['./cam_dinov2s_coco128.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.VisionTransformer',
        arch='dinov2-small',
        img_size=518,
        patch_size=14,
        layer_scale_init_value=1e-5,
        drop_path_rate=0.0,
        # block 9 (aux CAM, aux_layer=-3) and block 11 (CAM, final norm)
        out_indices=(9, 11),
        out_type='featmap',
        final_norm=True,
        frozen_stages=12,
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='pretrain/dinov2_vits14_mmpretrain.pth'),
        wsss=dict(cam=1, aux=0, decode=1, stride=14)))
