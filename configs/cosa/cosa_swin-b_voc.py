# CoSA on a hierarchical backbone, VOC12 + SBD: mmpretrain's Swin-B (the
# CoSA authors announced a Swin variant and never released it):
#   tools/dist_train.sh configs/cosa/cosa_swin-b_voc.py 4
# CAM on the last stage (stride 32), aux CAM on the one before (stride 16),
# UPerHead over all four stages. Weights: Swin-B, window 12, ImageNet-22k
# pre-trained and fine-tuned on ImageNet-1k at 384 px (mmpretrain's
# converted release). Schedule, data and CoSA's parts: cosa_vitb_voc.py.
# Not run here (no GPU, no VOC): a starting point with the paper's ViT
# hyper-parameters, not a tuned recipe. ACR / GETAM need WSSSViT.
_base_ = ['./cosa_vitb_voc.py']
num_classes = 20
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.SwinTransformer',
        arch='base',
        img_size=384,
        window_size=12,
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'swin-transformer/convert/swin_base_patch4_window12_384_22kto1k'
            '-d59b0d1d.pth'),
        wsss=dict(cam=3, aux=2, decode=(0, 1, 2, 3), stride=32)),
    cam_head=dict(in_channels=1024),
    aux_cam_head=dict(in_channels=512),
    decode_head=dict(
        _delete_=True,
        type='UPerHead',
        in_channels=[128, 256, 512, 1024],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=num_classes + 1,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(
            type='BalancedCrossEntropyLoss',
            loss_weight=0.1,
            loss_name='loss_seg')))
