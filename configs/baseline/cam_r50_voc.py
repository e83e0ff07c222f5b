# The classic ResNet-50 CAM baseline (Zhou et al.'s CAM: global average
# pooling, one linear classifier on the last stage) on VOC12 + SBD, in the
# single-stage frame of cam_vitb_voc.py (CAM pseudo-labels train a LargeFOV
# decoder after the warm-up):
#   tools/dist_train.sh configs/baseline/cam_r50_voc.py 4
# mmpretrain's ResNet-50 (ImageNet-1k); the last stage keeps stride 16
# (strides=(1, 2, 2, 1)) as WSSS ResNet CAM codes do, for a finer CAM.
# BatchNorm: batch statistics while training, frozen in the no-grad
# pseudo-label passes (see docs/en/advanced_guides/own_backbone.md).
_base_ = ['./cam_vitb_voc.py']
num_classes = 20
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ResNet',
        depth=50,
        strides=(1, 2, 2, 1),
        out_indices=(2, 3),
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth'),
        wsss=dict(cam=1, aux=0, decode=1, stride=16)),
    cam_head=dict(in_channels=2048, pool='gap'),
    aux_cam_head=dict(in_channels=1024, pool='gap'),
    decode_head=dict(in_channels=2048))
