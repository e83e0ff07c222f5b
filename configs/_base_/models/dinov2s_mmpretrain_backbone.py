# DINOv2-S/14 through mmpretrain's VisionTransformer, as a WSSS backbone
# (frozen like the WSSSViT coco128 configs). Not a model: configs take it
# with model = dict(backbone={{_base_.dinov2s_mmpretrain}}).
dinov2s_mmpretrain = dict(
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
    wsss=dict(cam=1, aux=0, decode=1, stride=14))
