default_scope = 'mmseg'
# registers mmseg-wsss (and installs its torch>=2.6 checkpoint-loading fix)
custom_imports = dict(imports=['mmseg_wsss'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
# the decode head gets no gradient during the classification-only warm-up;
# no buffer broadcast (mmengine's own default): each rank keeps its own
# dynamic-threshold queue, whose histogram CoSA sums over the ranks (with
# DDP's default every forward would copy rank 0's queue to all ranks)
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel',
    find_unused_parameters=True,
    broadcast_buffers=False)
