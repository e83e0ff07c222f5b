"""Training-step and inference benchmark of a WSSS config
(``tools/benchmark.py``).

A WSSS model's training step is measured against a *plain supervised step of
the same backbone, decode head and batch* built in the same process: an
mmseg ``EncoderDecoder`` trained with cross-entropy on (random) ground-truth
masks, i.e. what fully supervised training of the same network would cost.
Both run on the same synthetic batch (random pixels, random image labels), so
the ratio isolates what the method adds: extra views, the no-grad
multi-scale pseudo-label passes, the EMA network, extra losses.

Beside the measured ratio stands the *compute-ideal* one: the FLOPs one
training step must do (counted with ``torch.utils.flop_counter`` over the
step as it runs: the online forward and backward, every no-grad
pseudo-label pass at each scale and flip, a regulariser's flipped forward;
frozen parts get no weight gradients in either model) over the FLOPs of the
supervised step. A measured ratio well above it is overhead that is not
arithmetic (Python, small kernels, memory traffic). CoSA's dynamic-threshold
queue is filled to its configured size first, so the threshold's real cost
is in the time.

Memory counts parameters, optimizer state and the step's activations: on a
GPU the rise of CUDA ``max_memory_allocated`` over the allocation before the
model is built (in the benchmark process); on CPU the rise of the peak
resident set (``VmHWM``) over the resident set before the model is built,
measured in a fresh spawned process per model (freed heap memory of an
earlier model would otherwise be reused unseen, and handing it back to the OS
with ``malloc_trim`` slows every later allocation, i.e. the timings).
"""
import copy
import gc
import multiprocessing as mp
import os.path as osp
import statistics
import time
from typing import Callable, Dict, List, Optional

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


# ---------------------------------------------------------------- memory
def _proc_status_kb(key: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _release_memory():
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class PeakMemory:
    """Peak memory of a block of code, in MiB (see the module docstring)."""

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.kind = 'cuda_max_allocated' if self.device.type == 'cuda' \
            else 'cpu_peak_rss_increase'

    def __enter__(self):
        _release_memory()
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._base = _proc_status_kb('VmRSS')
            try:
                with open('/proc/self/clear_refs', 'w') as f:
                    f.write('5')  # reset VmHWM to the current RSS
                self._hwm_ok = True
            except OSError:
                self._hwm_ok = False
        return self

    def __exit__(self, *exc):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self.peak_mib = (torch.cuda.max_memory_allocated(self.device) -
                             self._base) / 2**20
        else:
            hwm = _proc_status_kb('VmHWM') if self._hwm_ok else None
            self.peak_mib = None if hwm is None or self._base is None else \
                (hwm - self._base) / 1024
        return False


# ---------------------------------------------------------------- batches
def _uses_strong_view(cfg: Config) -> bool:
    pipeline = cfg.get('train_dataloader', {}).get('dataset', {}).get(
        'pipeline', [])
    return any(t.get('type') == 'StrongPhotometricView' for t in pipeline)


def make_batch(batch_size: int,
               crop_size: tuple,
               num_classes: int,
               views: Optional[List[str]] = None,
               seed: int = 0) -> dict:
    """A dataloader-style batch as ``PackWSSSInputs`` makes it: uint8
    images (one view, or a dict of pixel-aligned views), image labels with
    1-3 classes, a full valid mask and a random ground-truth mask (used only
    by the supervised reference)."""
    g = torch.Generator().manual_seed(seed)
    h, w = crop_size
    inputs, samples = [], []
    for _ in range(batch_size):
        img = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
        inputs.append({v: img.clone() for v in views} if views else img)
        labels = torch.zeros(num_classes)
        n = int(torch.randint(1, min(3, num_classes) + 1, (1, ), generator=g))
        present = torch.randperm(num_classes, generator=g)[:n]
        labels[present] = 1
        mask = torch.randint(0, num_classes + 1, (1, h, w), generator=g)
        s = SegDataSample(
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                          flip=False))
        s.gt_img_labels = labels
        s.gt_sem_seg = PixelData(data=mask)
        s.valid_mask = PixelData(data=torch.ones(1, h, w, dtype=torch.uint8))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def supervised_model_cfg(model_cfg: dict) -> dict:
    """The fully supervised counterpart of a WSSS model config: mmseg's
    ``EncoderDecoder`` with the same backbone, data preprocessor and decode
    head, trained with cross-entropy."""
    model_cfg = copy.deepcopy(model_cfg)
    if model_cfg.get('decode_head') is None:
        raise ValueError('the config has no decode_head; a supervised '
                         'reference needs one')
    head = copy.deepcopy(model_cfg['decode_head'])
    head['loss_decode'] = dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
    backbone = model_cfg['backbone']
    if backbone.get('type') != 'WSSSViT':  # any other backbone: the same
        # maps reach the decode head as in the WSSS model (backbone.wsss)
        backbone = dict(type='WSSSDecodeInputs', backbone=backbone)
    return dict(
        type='EncoderDecoder',
        data_preprocessor=model_cfg.get('data_preprocessor'),
        backbone=backbone,
        decode_head=head,
        train_cfg=ConfigDict(),
        test_cfg=ConfigDict(mode='whole'))


# ---------------------------------------------------------------- FLOPs
def _cpu_sdpa_flop(q, k, v, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count
    return sdpa_flop_count(q, k, v)


def _cpu_sdpa_backward_flop(grad_out, q, k, v, *args, out_shape=None,
                            **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_backward_flop_count
    return sdpa_backward_flop_count(grad_out, q, k, v)


def flop_counter():
    """A ``FlopCounterMode`` that also counts the CPU fused-attention
    kernels (torch registers formulas only for the CUDA ones, so a fused
    CPU block would count 0 and an explicit one its matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode
    aten = torch.ops.aten
    mapping = {}
    for name, fn in (
            ('_scaled_dot_product_flash_attention_for_cpu', _cpu_sdpa_flop),
            ('_scaled_dot_product_flash_attention_for_cpu_backward',
             _cpu_sdpa_backward_flop)):
        if hasattr(aten, name):
            mapping[getattr(aten, name)] = fn
    return FlopCounterMode(display=False, custom_mapping=mapping)


def prefill_dynamic_threshold(model, seed: int = 0) -> None:
    """Fill a CoSA model's dynamic-threshold queue to its configured size
    (values uniform over (min_value, 1)), as in a long run."""
    dt = getattr(model, 'dynamic_threshold', None)
    if dt is None or not dt.enabled:
        return
    g = torch.Generator().manual_seed(seed)
    size = dt.queue.numel()
    values = dt.min_value + (1 - dt.min_value) * torch.rand(size, generator=g)
    dt.update(values.to(dt.queue.device) + 1e-6)


def apply_tweak(model, tweak: Optional[str]) -> None:
    """Benchmark-only variants of a built model: ``'attn_all_blocks'``
    materialises attention in every block (the behaviour before ACR read
    only its blocks)."""
    if tweak is None:
        return
    if tweak == 'attn_all_blocks':
        model.attn_only_where_read = False
    else:
        raise ValueError(f'unknown benchmark tweak {tweak!r}')


# ---------------------------------------------------------------- timing
def _sync(device: torch.device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _time_steps(step: Callable[[], None], device: torch.device, warmup: int,
                steps: int) -> Dict[str, float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return dict(
        step_s_mean=statistics.fmean(times),
        step_s_median=statistics.median(times),
        step_s_min=min(times))


def _bench_training(model_cfg: dict,
                    optim_cfg: dict,
                    batch: dict,
                    device: torch.device,
                    warmup: int,
                    steps: int,
                    after_warmup_iter: int,
                    measure_memory: bool = False,
                    tweak: Optional[str] = None,
                    count_flops: bool = False) -> Dict[str, float]:
    _release_memory()
    mem = PeakMemory(device) if measure_memory else None
    if mem is not None:
        mem.__enter__()
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.init_weights()
    model.to(device).train()
    apply_tweak(model, tweak)
    prefill_dynamic_threshold(model)
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(optim_cfg))
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', after_warmup_iter)  # past any warm-up
    ema = getattr(model, 'update_assignment_net', None)
    if ema is not None:  # as if the EMA hook had run before
        ema()

    def step(model=model, optim_wrapper=optim_wrapper):
        model.train_step(copy.deepcopy(batch), optim_wrapper)
        if ema is not None:  # what AssignmentNetEMAHook does
            ema()

    res = _time_steps(step, device, warmup, steps)
    if count_flops:  # one more step, counted (after the timing)
        with flop_counter() as counter:
            step()
        res['gflops_per_step'] = counter.get_total_flops() / 1e9
    if mem is not None:
        mem.__exit__(None, None, None)
        res['peak_mem_mib'] = mem.peak_mib
        res['memory_kind'] = mem.kind
    res['params_trainable_m'] = sum(
        p.numel() for p in model.parameters() if p.requires_grad) / 1e6
    del model, optim_wrapper, step
    _release_memory()
    return res


def _memory_child(args) -> Optional[float]:
    """Spawned process: peak memory of building ``model_cfg`` and a few
    training steps (CPU)."""
    model_cfg, optim_cfg, batch, after_warmup_iter, threads, tweak = args
    torch.set_num_threads(threads)
    import logging

    import mmseg_wsss  # noqa: F401  (registers the modules)
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)
    res = _bench_training(model_cfg, optim_cfg, batch, torch.device('cpu'),
                          1, 2, after_warmup_iter, measure_memory=True,
                          tweak=tweak)
    return res['peak_mem_mib']


def _cpu_peak_memory(model_cfg, optim_cfg, batch, after_warmup_iter,
                     tweak=None):
    ctx = mp.get_context('spawn')
    with ctx.Pool(1) as pool:
        return pool.apply(
            _memory_child,
            ((_plain(model_cfg), _plain(optim_cfg), batch, after_warmup_iter,
              torch.get_num_threads(), tweak), ))


def _plain(cfg):
    return cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg


def _bench_inference(model_cfg: dict, batch: dict, device: torch.device,
                     images: int) -> Dict[str, float]:
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.init_weights()
    model.to(device).eval()
    one = dict(
        inputs=batch['inputs'][:1], data_samples=batch['data_samples'][:1])
    if isinstance(one['inputs'][0], dict):
        one['inputs'] = [next(iter(one['inputs'][0].values()))]
    with torch.no_grad():
        model.test_step(copy.deepcopy(one))  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(images):
            model.test_step(copy.deepcopy(one))
        _sync(device)
    elapsed = time.perf_counter() - t0
    del model
    _release_memory()
    return dict(images_per_s=images / elapsed)


PAPER_CAM_SCALES = (1.0, 0.5, 1.5)


def _text_rows(model_cfg) -> list:
    from mmseg_wsss.models.utils.clip_text import load_text_bank
    return list(load_text_bank(model_cfg['text_embeddings'])['fg'])


def without_pretrained(model_cfg) -> list:
    """Drop the pretrained-weight sources of ``model_cfg`` in place
    (``pretrained`` paths, ``init_cfg`` of type ``Pretrained``, nested
    backbones included): timing needs no weights, and a benchmark must run
    where the files or URLs are not reachable. Returns what was dropped."""
    dropped = []

    def walk(node, path):
        if isinstance(node, dict):
            if node.get('pretrained'):
                dropped.append(f'{path}.pretrained')
                node['pretrained'] = None
            init = node.get('init_cfg')
            if isinstance(init, dict) and init.get('type') == 'Pretrained':
                dropped.append(f'{path}.init_cfg')
                node['init_cfg'] = None
            for k, v in node.items():
                walk(v, f'{path}.{k}')
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                walk(v, f'{path}.{i}')

    walk(model_cfg, 'model')
    return dropped


def run_benchmark(cfg: Config,
                  device: str = 'cpu',
                  batch_size: Optional[int] = None,
                  crop_size: Optional[tuple] = None,
                  steps: int = 10,
                  warmup: int = 3,
                  infer_images: int = 5,
                  seed: int = 0,
                  paper_scales: bool = False,
                  attn_all_blocks: bool = False) -> dict:
    """Benchmark ``cfg.model`` against its supervised reference.

    Returns a JSON-serialisable dict with ``wsss`` and ``supervised``
    (step time, peak memory, GFLOPs per step, inference images/s), and their
    ``ratio`` (``step_time`` measured, ``ideal`` from the FLOPs, ``peak_mem``
    and ``reads``: "measured / ideal"). Variants, each with its own
    ``ratio_<name>``: ``paper_scales`` adds ``wsss_paper_scales`` (the
    pseudo-label passes at the papers' scales (1.0, 0.5, 1.5) where the
    config uses fewer); ``attn_all_blocks`` adds ``wsss_attn_all_blocks``
    (attention materialised in every block, the earlier behaviour).
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    model_cfg = copy.deepcopy(cfg.model)
    dropped = without_pretrained(model_cfg)  # random weights time the same
    text = model_cfg.get('text_embeddings')
    if text and not osp.isfile(text):  # CLIP methods: random text rows
        import tempfile

        from mmseg_wsss.models.utils.clip_text import random_text_bank
        k = model_cfg['decode_head']['num_classes'] - 1 \
            if model_cfg.get('decode_head') else 20
        model_cfg['text_embeddings'] = random_text_bank(
            osp.join(tempfile.mkdtemp(), 'text.pth'), k)
        dropped.append(f'model.text_embeddings ({text}: random rows)')
    bank = model_cfg.get('attribute_bank')
    if bank and not osp.isfile(bank):  # ExCEL: random attribute centres
        import tempfile
        path = osp.join(tempfile.mkdtemp(), 'bank.pth')
        torch.save(dict(centres=torch.randn(512, 112)), path)
        model_cfg['attribute_bank'] = path
        dropped.append(f'model.attribute_bank ({bank}: random centres)')
    if batch_size is None:
        batch_size = cfg.train_dataloader.batch_size
    if crop_size is None:
        crop_size = cfg.get('crop_size', None) or \
            model_cfg['data_preprocessor']['size']
    crop_size = tuple(int(c) for c in crop_size)
    if model_cfg.get('type') == 'CLIPES':  # training-free: images/s only
        k = len(_text_rows(model_cfg))
        batch = make_batch(1, crop_size, k, None, seed)
        return dict(model='CLIPES', device=str(device),
                    torch_threads=torch.get_num_threads(),
                    crop_size=list(crop_size), classes_per_image='1-3',
                    weights='random initialisation (not loaded: ' +
                    (', '.join(dropped) or 'none configured') + ')',
                    wsss=_bench_inference(model_cfg, batch, device,
                                          max(1, infer_images)))
    num_classes = model_cfg['decode_head']['num_classes'] - 1 \
        if model_cfg.get('decode_head') else \
        model_cfg['cam_head']['num_classes']
    views = ['weak', 'strong'] if _uses_strong_view(cfg) else None
    batch = make_batch(batch_size, crop_size, num_classes, views, seed)
    sup_batch = make_batch(batch_size, crop_size, num_classes, None, seed)
    warmup_iters = int(model_cfg.get('train_cfg', {}).get('warmup_iters', 0))

    result = dict(
        model=model_cfg['type'],
        device=str(device),
        device_name=torch.cuda.get_device_name(device)
        if device.type == 'cuda' else 'cpu',
        torch_threads=torch.get_num_threads(),
        batch_size=batch_size,
        crop_size=list(crop_size),
        steps=steps,
        warmup_steps=warmup,
        test_cfg=dict(model_cfg.get('test_cfg') or {}),
        weights='random initialisation (not loaded: ' +
        (', '.join(dropped) or 'none configured') + ')')
    sup_cfg = supervised_model_cfg(model_cfg)
    cuda = device.type == 'cuda'
    # prime: the first step of a process pays one-off costs (kernel and
    # thread-pool set-up, allocator growth) that belong to neither model
    _bench_training(sup_cfg, cfg.optim_wrapper, sup_batch, device, 1, 1,
                    warmup_iters + 1)
    phases = [('supervised', sup_cfg, sup_batch, None),
              ('wsss', model_cfg, batch, None)]
    scales = (model_cfg.get('train_cfg') or {}).get('cam_scales')
    if paper_scales and scales is not None and \
            tuple(scales) != PAPER_CAM_SCALES:
        paper_cfg = copy.deepcopy(model_cfg)
        paper_cfg['train_cfg']['cam_scales'] = PAPER_CAM_SCALES
        phases.append(('wsss_paper_scales', paper_cfg, batch, None))
    if attn_all_blocks:
        phases.append(('wsss_attn_all_blocks', model_cfg, batch,
                       'attn_all_blocks'))
    for name, mcfg, b, tweak in phases:
        result[name] = _bench_training(mcfg, cfg.optim_wrapper, b, device,
                                       warmup, steps, warmup_iters + 1,
                                       measure_memory=cuda, tweak=tweak,
                                       count_flops=True)
    if not cuda:
        for name, mcfg, b, tweak in phases:
            result[name]['peak_mem_mib'] = _cpu_peak_memory(
                mcfg, cfg.optim_wrapper, b, warmup_iters + 1, tweak)
            result[name]['memory_kind'] = 'cpu_peak_rss_increase'
    if infer_images > 0:
        result['supervised'].update(
            _bench_inference(sup_cfg, sup_batch, device, infer_images))
        result['wsss'].update(
            _bench_inference(model_cfg, batch, device, infer_images))
    s = result['supervised']
    for name, *_ in phases[1:]:
        w = result[name]
        ratio = dict(step_time=w['step_s_median'] / s['step_s_median'],
                     ideal=w['gflops_per_step'] / s['gflops_per_step'])
        ratio['reads'] = (f"{ratio['step_time']:.2f}x measured / "
                          f"{ratio['ideal']:.2f}x ideal")
        if w['peak_mem_mib'] and s['peak_mem_mib']:
            ratio['peak_mem'] = w['peak_mem_mib'] / s['peak_mem_mib']
        result['ratio' if name == 'wsss' else
               'ratio_' + name[len('wsss_'):]] = ratio
    return result


def bench_dynamic_threshold(sizes=(10_000, 100_000, 1_000_000),
                            fits=('samples', 'histogram'),
                            push: int = 2000,
                            calls: int = 10,
                            seed: int = 0) -> dict:
    """Per-call time of :meth:`DynamicThreshold.update` with a full queue of
    each size, for each fit, in this process: ``{fit: {size: ms}}`` and the
    100k / 10k ratio per fit. Every call pushes ``push`` new values (a
    CoSA step's CAM maxima) and refits."""
    from mmseg_wsss.models.pseudo_labels import DynamicThreshold
    g = torch.Generator().manual_seed(seed)
    out = {}
    for fit in fits:
        out[fit] = {}
        for size in sizes:
            dt = DynamicThreshold(queue_size=size, fit=fit)
            dt.update(0.06 + 0.94 * torch.rand(size, generator=g))
            batch = 0.06 + 0.94 * torch.rand(push, generator=g)
            dt.update(batch)  # warm-up call
            n = max(2, calls if fit == 'histogram' or size <= 100_000
                    else calls // 3)
            t0 = time.perf_counter()
            for _ in range(n):
                dt.update(batch)
            out[fit][size] = 1000 * (time.perf_counter() - t0) / n
        if 10_000 in out[fit] and 100_000 in out[fit]:
            out[fit]['ratio_100k_10k'] = out[fit][100_000] / out[fit][10_000]
    return out
