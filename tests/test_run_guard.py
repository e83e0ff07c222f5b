"""Reliability, second round: atomic checkpoints, one run per work dir,
Ctrl-C never hangs, trust bound to content, bad input named before work.

The kill and interrupt tests send their signal at random moments, many
times, and each also shows it can fail: the kill test runs mmengine's own
CheckpointHook through the same kills and finds work lost; the interrupt
tests check that the signal was delivered (status 130 and the tool's own
message), not that the tool happened to finish first."""
import json
import logging
import os
import os.path as osp
import pickle
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmseg.registry import DATASETS, HOOKS, MODELS
from PIL import Image

from mmseg_wsss.datasets import load_cls_labels, make_toy_voc
from mmseg_wsss.engine.hooks.config_check_hook import (check_paramwise_cfg,
                                                        top_level_typos)
from mmseg_wsss.utils import (CheckpointReadError, UnsafeCheckpointError,
                              safe_torch_load)
from mmseg_wsss.utils import checkpoint as ckpt_mod
from mmseg_wsss.utils.run_guard import find_resumable_checkpoint
from mmseg_wsss.utils.workers import WorkerPool

from .conftest import REPO
from .test_reliability import _Payload
from .test_runner import ENV, run, write_cfg


def _default_sigint():
    # a background job starts with SIGINT ignored: give the child the
    # default (Python then raises KeyboardInterrupt, as at a terminal)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _popen(args, env=ENV, **kw):
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            start_new_session=True,
                            preexec_fn=_default_sigint, **kw)


def _start_and_signal(args, marker, delay, sig):
    """Start ``args``, wait until its output shows ``marker`` (its work has
    begun; ``None``: do not wait), sleep ``delay`` s, then send ``sig`` to
    its process group as a terminal's Ctrl-C does. Returns the process and
    the list its output lines are read into."""
    import threading
    proc = _popen(args)
    lines = []

    def read():
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.time() + 120
    while marker is not None and not any(marker in x for x in lines):
        if proc.poll() is not None or time.time() > deadline:
            break
        time.sleep(0.05)
    time.sleep(delay)
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc._reader, proc._lines = reader, lines
    return proc


def _wait_signalled(proc, timeout):
    """(returncode or None on a hang, output, seconds to stop)."""
    t0 = time.time()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc._reader.join(5)
        return None, ''.join(proc._lines), time.time() - t0
    proc._reader.join(5)
    return proc.returncode, ''.join(proc._lines), time.time() - t0


# ------------------------------------------------------ 1. atomic saves
SAVER = '''
import json, os, random, signal, sys, time
import torch
from mmengine.logging import MessageHub, MMLogger
from mmengine.runner import find_latest_checkpoint
from mmengine.runner.checkpoint import save_checkpoint
from mmengine.hooks import CheckpointHook
from mmseg_wsss.engine.hooks import AtomicCheckpointHook
from mmseg_wsss.utils.run_guard import (checkpoint_is_complete,
                                        find_resumable_checkpoint)

root, kind, tries = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(int(sys.argv[4]))
MMLogger.get_instance('saver', log_level='ERROR')
class Loop:
    max_iters = 10 ** 9
class Runner:
    epoch = 0
    train_loop = Loop()
    logger = MMLogger.get_current_instance()
    def __init__(self, work):
        self.work_dir, self.iter = work, 0
        self.message_hub = MessageHub.get_instance('saver' + work)
    def save_checkpoint(self, out_dir, filename, file_client_args=None,
                        save_optimizer=True, save_param_scheduler=True,
                        meta=None, by_epoch=True, backend_args=None):
        # ~8 MB, as the state of a small model
        save_checkpoint(dict(meta=meta, state_dict=dict(
            w=torch.full((2 ** 21, ), float(meta['iter'])))),
            os.path.join(out_dir, filename))
outcomes = []
for t in range(tries):
    work = os.path.join(root, f'{kind}{t}')
    os.makedirs(work)
    pid = os.fork()
    if pid == 0:  # the "training": saves back to back until killed
        runner = Runner(work)
        cls = AtomicCheckpointHook if kind == 'atomic' else CheckpointHook
        hook = cls(interval=1, by_epoch=False, max_keep_ckpts=1)
        hook.before_train(runner)
        while True:
            hook.after_train_iter(runner, runner.iter)
            runner.iter += 1
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(work, 'last_checkpoint')):
        assert time.time() < deadline
        time.sleep(0.005)
    time.sleep(rng.uniform(0.02, 0.5))
    os.kill(pid, signal.SIGKILL)  # kill -9 at a random moment
    os.waitpid(pid, 0)
    found = (find_resumable_checkpoint(work) if kind == 'atomic'
             else find_latest_checkpoint(work))  # mmengine's --resume
    ok = found is not None and checkpoint_is_complete(found)
    if ok:
        ckpt = torch.load(found, weights_only=True)
        ok = bool(ckpt['state_dict']['w'][0] == ckpt['meta']['iter'])
    outcomes.append(ok)
print(json.dumps(outcomes))
'''


def _kill_during_saves(tmp_path, kind, tries, seed):
    """SIGKILL a process saving checkpoints at random moments; per try,
    whether a complete checkpoint could be resumed afterwards."""
    script = tmp_path / 'saver.py'
    script.write_text(SAVER)
    out = run([sys.executable, str(script), str(tmp_path), kind, str(tries),
               str(seed)])
    return json.loads(out.strip().splitlines()[-1])


def test_kill_during_save_never_loses_the_checkpoint(tmp_path):
    """max_keep_ckpts=1, kill -9 at random moments while checkpoints are
    saved back to back: every time a complete one is left and found. The
    same kills against mmengine's CheckpointHook lose it (it deletes the old
    file first and writes the new one in place): the test can fail."""
    assert all(_kill_during_saves(tmp_path, 'atomic', 20, seed=0))
    plain = _kill_during_saves(tmp_path, 'plain', 8, seed=1)
    assert not all(plain), 'the kills never hit a save: the test is blind'


def test_resumable_checkpoint_fallbacks(tmp_path):
    """Empty last_checkpoint, one naming a deleted file, a cut-short newest
    file: --resume's search says why and takes the newest complete one."""
    work = str(tmp_path)
    for i in (3, 6, 9):
        torch.save(dict(meta=dict(iter=i)), osp.join(work, f'iter_{i}.pth'))
    data = open(osp.join(work, 'iter_9.pth'), 'rb').read()
    open(osp.join(work, 'iter_9.pth'), 'wb').write(data[:len(data) // 2])
    marker = osp.join(work, 'last_checkpoint')
    logs = []
    open(marker, 'w').close()
    assert find_resumable_checkpoint(work, logs.append) == \
        osp.join(work, 'iter_6.pth')
    assert 'is empty' in logs[-1] and 'iter_9.pth: incomplete' in logs[0]
    open(marker, 'w').write(osp.join(work, 'iter_12.pth'))
    logs.clear()
    assert find_resumable_checkpoint(work, logs.append).endswith('iter_6.pth')
    assert 'iter_12.pth, which does not exist' in logs[-1]
    open(marker, 'w').write(osp.join(work, 'iter_9.pth'))
    logs.clear()
    assert find_resumable_checkpoint(work, logs.append).endswith('iter_6.pth')
    assert 'is incomplete' in logs[-1]
    open(marker, 'w').write(osp.join(work, 'iter_3.pth'))  # complete: kept
    assert find_resumable_checkpoint(work).endswith('iter_3.pth')
    # the cut-short file is refused by name when loaded directly
    with pytest.raises(CheckpointReadError, match='iter_9.pth.*cut short'):
        safe_torch_load(osp.join(work, 'iter_9.pth'))


def test_resume_fallback_and_nothing_to_train_end_to_end(tmp_path, toy_root):
    """tools/train.py with max_keep_ckpts=1: an emptied last_checkpoint
    resumes from the complete file with a warning; a resume at max_iters
    stops (non-zero) saying what to change; a last_checkpoint outside the
    work dir is named."""
    work = str(tmp_path / 'w')
    cfg4 = write_cfg(tmp_path, toy_root, max_iters=4, name='c4.py')
    cfg6 = write_cfg(tmp_path, toy_root, max_iters=6, name='c6.py')
    keep1 = ['--cfg-options', 'default_hooks.checkpoint.interval=2',
             'default_hooks.checkpoint.max_keep_ckpts=1']
    run([sys.executable, 'tools/train.py', cfg4, '--work-dir', work] + keep1)
    assert sorted(f for f in os.listdir(work) if f.endswith('.pth')) == \
        ['iter_4.pth']
    assert open(osp.join(work, 'last_checkpoint')).read() == \
        osp.join(work, 'iter_4.pth')
    open(osp.join(work, 'last_checkpoint'), 'w').close()
    proc = subprocess.run([sys.executable, 'tools/train.py', cfg4,
                           '--work-dir', work, '--resume'] + keep1, cwd=REPO,
                          env=ENV, capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'last_checkpoint is empty; resuming from the newest complete ' \
        f'checkpoint in the work dir instead: {work}/iter_4.pth' in out
    assert 'resumed at iteration 4 and train_cfg.max_iters is 4: there is ' \
        'nothing left to train' in out
    assert 'train_cfg.max_iters=N' in out
    # last_checkpoint pointing elsewhere: followed, and said
    other = str(tmp_path / 'elsewhere.pth')
    os.replace(osp.join(work, 'iter_4.pth'), other)
    open(osp.join(work, 'last_checkpoint'), 'w').write(other)
    out = run([sys.executable, 'tools/train.py', cfg6, '--work-dir', work,
               '--resume'] + keep1)
    assert f'points outside the work dir, to {other}' in out
    assert 'Iter(train) [6/6]' in out


# ------------------------------------------------------ 2. one run per dir
def test_second_run_in_a_work_dir_is_refused_and_kill_leaves_no_stale_lock(
        tmp_path, toy_root):
    work = str(tmp_path / 'w')
    cfg = write_cfg(tmp_path, toy_root, max_iters=400, name='long.py')
    first = _popen([sys.executable, 'tools/train.py', cfg, '--work-dir',
                    work])
    lock = osp.join(work, '.train.lock')
    deadline = time.time() + 120
    while not (osp.isfile(lock) and open(lock).read()):
        assert time.time() < deadline and first.poll() is None
        time.sleep(0.1)
    second = subprocess.run([sys.executable, 'tools/train.py', cfg,
                             '--work-dir', work], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode != 0
    assert f'another training run is using the work dir {work} (pid ' \
        f'{first.pid} on' in second.stderr
    assert 'pass another --work-dir' in second.stderr
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate()
    # the killed run's lock went with it: the next run takes over, saying so
    third = run([sys.executable, 'tools/train.py',
                 write_cfg(tmp_path, toy_root, max_iters=2, name='short.py'),
                 '--work-dir', work])
    assert 'did not end cleanly (killed?): pid %d' % first.pid in third
    assert open(lock).read() == ''  # released at the clean end


# ------------------------------------------------------ 3. Ctrl-C, SIGTERM
def _sleep(x):
    time.sleep(x)
    return x


def test_worker_pool_results_errors_and_kill():
    with WorkerPool(2) as pool:
        assert list(pool.imap(abs, [-3, 2, -1])) == [3, 2, 1]
        with pytest.raises(Exception, match='ZeroDivisionError'):
            pool.apply_async(divmod, (1, 0)).get()
    pool = WorkerPool(2)
    for _ in range(4):
        pool.apply_async(_sleep, (30, ))
    t0 = time.time()
    pool.kill()
    assert time.time() - t0 < 6
    assert all(p.exitcode is not None for p in pool._procs)


@pytest.fixture(scope='module')
def crf_export(tmp_path_factory, toy_root):
    tmp = tmp_path_factory.mktemp('interrupt')
    cfg_path = write_cfg(tmp, toy_root, max_iters=4)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(cfg_path).model)
    model.init_weights()
    ckpt = str(tmp / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    return cfg_path, ckpt, tmp


def test_ctrl_c_and_sigterm_stop_the_export_at_once(crf_export):
    """gen_pseudo_labels.py --workers 2 --crf, interrupted at random moments
    of its work (and once during start-up): it exits within seconds every
    time -- status 130 and its own message once its work has begun --
    every PNG it left is whole, the id list (the export's completion mark)
    is absent; a rerun finishes the export."""
    cfg_path, ckpt, tmp = crf_export
    rng = random.Random(1)
    out = str(tmp / 'pl')
    args = [sys.executable, 'tools/gen_pseudo_labels.py', cfg_path, ckpt,
            '--out', out, '--workers', '2', '--crf', '--scales', '1.0',
            '1.5']
    interrupted = 0
    plan = [(None, rng.uniform(1.0, 3.0), signal.SIGINT)]  # start-up
    plan += [('to do on this process', rng.uniform(0.0, 2.5), signal.SIGINT)
             for _ in range(6)]
    plan += [('to do on this process', rng.uniform(0.0, 2.5),
              signal.SIGTERM)]
    for t, (marker, delay, sig) in enumerate(plan):
        proc = _start_and_signal(args, marker, delay, sig)
        rc, log, secs = _wait_signalled(proc, timeout=30)
        assert rc is not None, f'try {t}: hung after the signal\n{log[-2000:]}'
        assert secs < 15, f'try {t}: {secs:.1f} s to stop'
        if rc == 0:
            continue  # finished before the signal: a complete export
        if marker is None and rc == -sig:
            continue  # stopped in its imports, before any work: Python's
            # own handling (exit by the signal), nothing written
        interrupted += 1
        assert rc == 130 and 'interrupted:' in log, log[-2000:]
        seg = osp.join(out, 'SegmentationClass')
        for name in os.listdir(seg) if osp.isdir(seg) else []:
            if name.endswith('.png') and not name.endswith('.tmp.png'):
                np.asarray(Image.open(osp.join(seg, name)))  # whole files
        if not osp.isfile(osp.join(out, 'summary.json')):
            assert not osp.exists(
                osp.join(out, 'ImageSets', 'Segmentation', 'train.txt'))
    # the signal was delivered mid-work: the test can see a hang or a wrong
    # status (it fails if the tool ignores the signal and runs to the end)
    assert interrupted >= 3
    log = run(args)
    ids = open(osp.join(out, 'ImageSets/Segmentation/train.txt')).read()
    assert len(ids.split()) == 40 and 'already exported' in log
    assert len(os.listdir(osp.join(out, 'SegmentationClass'))) == 40


def test_test_py_out_refuses_an_incomplete_folder(crf_export, tmp_path):
    cfg_path, ckpt, _ = crf_export
    out = tmp_path / 'pred'
    out.mkdir()
    (out / 'x.png').write_bytes(b'')
    proc = subprocess.run([sys.executable, 'tools/test.py', cfg_path, ckpt,
                           '--work-dir', str(tmp_path / 'w'), '--out',
                           str(out)], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0
    assert f'--out {out} already holds 1 files but no .complete.json' in \
        proc.stderr
    os.remove(out / 'x.png')
    run([sys.executable, 'tools/test.py', cfg_path, ckpt, '--work-dir',
         str(tmp_path / 'w'), '--out', str(out)])
    done = json.load(open(out / '.complete.json'))
    assert done['masks'] == 12 == len(list(out.glob('*.png')))
    # a complete folder is accepted again (its marker goes first, to be
    # rewritten at the end of the new run)
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'test_tool', osp.join(REPO, 'tools', 'test.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.check_out_dir(str(out))
    assert not (out / '.complete.json').exists()
    (out / 'x.png').write_bytes(b'')
    with pytest.raises(SystemExit, match='no .complete.json'):
        tool.check_out_dir(str(out))


def test_test_time_crf_pool_stops_on_sigint(crf_export, tmp_path):
    """tools/test.py with the CRF in 2 workers, SIGINT mid-test (random
    moments after the pool started): exits 130 within seconds, and the
    --out folder is left unmarked."""
    cfg_path, ckpt, _ = crf_export
    rng = random.Random(2)
    stopped = 0
    for t in range(2):
        out = str(tmp_path / f'pred{t}')
        proc = _start_and_signal(
            [sys.executable, 'tools/test.py', cfg_path, ckpt, '--work-dir',
             str(tmp_path / f'w{t}'), '--out', out, '--crf-workers', '2',
             '--cfg-options', 'model.test_cfg.crf.iterations=20',
             'test_dataloader.dataset.ann_file='
             'ImageSets/Segmentation/train.txt'],
            'test-time DenseCRF in 2 worker', rng.uniform(0.0, 2.0),
            signal.SIGINT)
        rc, log, secs = _wait_signalled(proc, timeout=30)
        assert rc is not None, f'hung after SIGINT\n{log[-2000:]}'
        assert secs < 15, f'try {t}: {secs:.1f} s to stop'
        if rc == 0:
            continue
        stopped += 1
        assert rc == 130 and 'interrupted' in log, log[-2000:]
        assert not osp.exists(osp.join(out, '.complete.json'))
    assert stopped >= 1


# ------------------------------------------------------ 4. trust
def test_trusted_url_never_loads_another_urls_file(tmp_path, monkeypatch):
    """A crafted legit.pth fetched from one URL is refused and removed; a
    trusted URL with the same file name downloads and loads its own file."""
    import mmengine.runner.checkpoint as mm_ckpt
    hub = tmp_path / 'hub'
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(hub))
    marker = tmp_path / 'pwned'
    served = {
        'http://evil.example/legit.pth': dict(meta=_Payload(str(marker))),
        'http://good.example/legit.pth': dict(state_dict=dict(
            w=torch.ones(2))),
    }
    downloads = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        downloads.append(url)
        torch.save(served[url], dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    monkeypatch.delenv(ckpt_mod.TRUST_ENV, raising=False)
    with pytest.raises(UnsafeCheckpointError, match='evil.example'):
        mm_ckpt.load_url('http://evil.example/legit.pth')
    assert list((hub / 'checkpoints').iterdir()) == []  # removed
    monkeypatch.setenv(ckpt_mod.TRUST_ENV, 'http://good.example/legit.pth')
    got = mm_ckpt.load_url('http://good.example/legit.pth')
    assert torch.equal(got['state_dict']['w'], torch.ones(2))
    assert downloads == ['http://evil.example/legit.pth',
                         'http://good.example/legit.pth']
    assert not marker.exists()
    # even a crafted file left in the cache under the trusted URL's plain
    # file name (torch.hub's key) is never the one a trusted URL loads
    torch.save(served['http://evil.example/legit.pth'],
               hub / 'checkpoints' / 'legit.pth')
    got = mm_ckpt.load_url('http://good.example/legit.pth')
    assert 'state_dict' in got and not marker.exists()


def test_trust_list_keeps_urls_and_binds_to_content(tmp_path, monkeypatch):
    env = ('/a.pth:https://host:8080/x/m.pth:http://e.org/y.pth;'
           '/b.pth\nsha256:ABC:*')
    assert ckpt_mod.split_trust_list(env) == [
        '/a.pth', 'https://host:8080/x/m.pth', 'http://e.org/y.pth',
        '/b.pth', 'sha256:ABC', '*']
    monkeypatch.setenv(ckpt_mod.TRUST_ENV,
                       '/x.pth:https://host:8080/x/m.pth')
    assert ckpt_mod.is_trusted('https://host:8080/x/m.pth')
    assert not ckpt_mod.is_trusted('https://host:8080/x/other.pth')
    # by content: the same bytes under any name, other bytes never
    marker = tmp_path / 'ran'
    path = tmp_path / 'legacy.pth'
    torch.save(dict(meta=_Payload(str(marker))), path)
    with pytest.raises(UnsafeCheckpointError):
        safe_torch_load(str(path))
    digest = ckpt_mod.sha256_file(str(path))
    monkeypatch.setenv(ckpt_mod.TRUST_ENV, f'sha256:{digest}')
    safe_torch_load(str(path))
    assert marker.exists()
    marker.unlink()
    torch.save(dict(meta=_Payload(str(marker)), x=1), path)  # other bytes
    with pytest.raises(UnsafeCheckpointError):
        safe_torch_load(str(path))
    assert not marker.exists()


class _System:

    def __reduce__(self):
        return (os.system, ('true', ))


class _Getattr:

    def __reduce__(self):
        return (np.ndarray.tofile, (np.zeros(2), '/nonexistent/x'))


@pytest.mark.parametrize('legacy', [False, True])
@pytest.mark.parametrize('kind,expect', [
    ('raw pickle', 'posix.system'),
    ('raw pickle protocol 2', "builtins.getattr(numpy.ndarray, 'tofile')"),
    ('torch.save getattr', "builtins.getattr(numpy.ndarray, 'tofile')"),
    ('torch.save protocol 2', 'posix.system'),
    ('legacy protocol 2 getattr',
     "builtins.getattr(numpy.ndarray, 'tofile')"),
])
def test_every_refusal_names_its_reason(tmp_path, monkeypatch, legacy, kind,
                                        expect):
    monkeypatch.setattr(ckpt_mod, '_FORCE_LEGACY', legacy)
    monkeypatch.delenv(ckpt_mod.TRUST_ENV, raising=False)
    path = str(tmp_path / 'f.pth')
    if kind == 'raw pickle':
        pickle.dump(dict(a=_System()), open(path, 'wb'))
    elif kind == 'raw pickle protocol 2':
        pickle.dump(dict(a=_Getattr()), open(path, 'wb'), protocol=2)
    elif kind == 'torch.save getattr':
        torch.save(dict(a=_Getattr()), path)
    elif kind == 'torch.save protocol 2':
        torch.save(dict(a=_System()), path, pickle_protocol=2)
    else:
        torch.save(dict(a=_Getattr()), path, pickle_protocol=2,
                   _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_torch_load(path)
    msg = str(err.value)
    assert f'it holds {expect}' in msg and 'unknown' not in msg
    assert '__builtin__' not in msg


def test_a_file_that_is_no_checkpoint_is_named():
    import tempfile
    with tempfile.NamedTemporaryFile(suffix='.pth') as f:
        f.write(b'hello world')
        f.flush()
        with pytest.raises((CheckpointReadError, UnsafeCheckpointError)) \
                as err:
            safe_torch_load(f.name)
        assert f.name in str(err.value)


# ------------------------------------------------------ 5. bad input
def _toy(tmp_path, **kw):
    root = str(tmp_path / 'toy')
    make_toy_voc(root, num_train=6, num_val=4, size_range=(64, 96), seed=0,
                 **kw)
    return root


def _ids(root, split):
    return open(osp.join(root, 'ImageSets', 'Segmentation',
                         split)).read().split()


def _ds(root, split='val.txt', test_mode=True, labels='cls_labels.npy',
        **kw):
    return DATASETS.build(dict(
        type='WSSSToyDataset', data_root=root, test_mode=test_mode,
        ann_file=f'ImageSets/Segmentation/{split}', cls_labels_file=labels,
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'), **kw))


def _resize_mask(root, img_id):
    path = osp.join(root, 'SegmentationClass', img_id + '.png')
    m = Image.open(path)
    m.resize((m.size[0] + 9, m.size[1] - 7), Image.NEAREST).save(path)
    return path


def test_mask_of_another_size_is_named_at_build_and_at_load(tmp_path):
    root = _toy(tmp_path)
    val = _ids(root, 'val.txt')[1]
    path = _resize_mask(root, val)
    with pytest.raises(ValueError) as err:
        _ds(root)
    msg = str(err.value)
    assert path in msg and f'{val}.jpg' in msg and 'differ in size' in msg
    assert 'check_dataset.py' in msg
    # a training set (not checked at build) stops at load, both files named
    train = _ids(root, 'train.txt')[0]
    tpath = _resize_mask(root, train)
    ds = _ds(root, 'train.txt', test_mode=False, pipeline=[
        dict(type='LoadImageFromFile'), dict(type='LoadWSSSAnnotations')])
    idx = [ds.get_data_info(i)['img_id'] for i in range(len(ds))].index(train)
    with pytest.raises(ValueError) as err:
        ds[idx]
    assert tpath in str(err.value) and f'{train}.jpg' in str(err.value)
    assert 'differs from its image' in str(err.value)


def _check_dataset(tmp_path, root, **cfg_extra):
    cfg = tmp_path / 'cfg.py'
    extra = ''.join(f'{k} = {v!r}\n' for k, v in cfg_extra.items())
    cfg.write_text(f'''
_base_ = [{osp.join(REPO, 'configs', 'baseline', 'cam_tiny_toy.py')!r}]
train_dataloader = dict(dataset=dict(data_root={root!r}))
val_dataloader = dict(dataset=dict(data_root={root!r}))
test_dataloader = val_dataloader
val_cfg = dict(extra_evals=[])
{extra}''')
    report = str(tmp_path / 'report.json')
    proc = subprocess.run(
        [sys.executable, 'tools/check_dataset.py', str(cfg), '--workers',
         '0', '--out', report], cwd=REPO, env=ENV, capture_output=True,
        text=True, timeout=300)
    return proc, json.load(open(report)) if osp.isfile(report) else None


def test_check_dataset_gives_the_size_fix_and_reads_the_labels(tmp_path):
    root = _toy(tmp_path)
    mask = _resize_mask(root, _ids(root, 'val.txt')[1])
    labels = osp.join(root, 'cls_labels.npy')
    table = load_cls_labels(labels)
    first = _ids(root, 'train.txt')[0]
    table[first] = np.array([np.nan, 1, 0, 0], np.float32)
    np.save(labels, table)
    proc, report = _check_dataset(tmp_path, root)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    bad = [b for r in report.values() for b in r['bad']]
    size = [b for b in bad if b['file'] == mask][0]
    assert size['kind'] == 'mask size' and 'pixel for pixel' in size['fix']
    assert 'colour' not in size['fix']
    lab = [b for b in bad if b['kind'] == 'labels'][0]
    assert lab['file'] == labels and repr(first) in lab['problems'][0]
    assert 'nan' in lab['problems'][0] and 'make_cls_labels' in lab['fix']


@pytest.mark.parametrize('content,expect', [
    ('strings', 'is not numeric'),
    ('code', 'refusing to read this label file'),
    ('matrix', 'has shape (2, 2)'),
])
def test_check_dataset_refuses_label_files_training_refuses(
        tmp_path, content, expect):
    root = _toy(tmp_path)
    labels = osp.join(root, 'cls_labels.npy')
    table = load_cls_labels(labels)
    first = _ids(root, 'train.txt')[0]
    if content == 'strings':
        table[first] = np.array(['a', '1', '0', '0'])
        np.save(labels, table)
    elif content == 'matrix':
        table[first] = np.ones((2, 2), np.float32)
        np.save(labels, table)
    else:
        with open(labels, 'wb') as f:  # np.save of an object that runs code
            np.save(f, np.array(_System(), dtype=object), allow_pickle=True)
    proc, report = _check_dataset(tmp_path, root)
    assert proc.returncode == 1, proc.stdout[-2000:]
    lab = [b for r in report.values() for b in r['bad']
           if b['kind'] == 'labels']
    assert lab and expect in lab[0]['problems'][0]
    # training refuses the same file, naming it
    with pytest.raises(Exception) as err:
        _ds(root, 'train.txt', test_mode=False)
    assert labels in str(err.value) and expect in str(err.value)


def test_label_file_errors_name_the_file(tmp_path):
    bad_json = tmp_path / 'l.json'
    bad_json.write_text('{"a": [0, 1] "b": [1, 0]}')
    with pytest.raises(ValueError, match=f'{bad_json} is not valid JSON'):
        load_cls_labels(str(bad_json))
    npz = str(tmp_path / 'l.npz')
    np.savez(npz, ids=np.array(['a', 'b'], dtype=object),
             labels=np.eye(2))
    with pytest.raises(ValueError) as err:
        load_cls_labels(npz)
    assert npz in str(err.value) and 'not object arrays' in str(err.value)


def test_corrupt_jpeg_is_logged_once_naming_the_file(tmp_path, capfd):
    root = _toy(tmp_path)
    img_id = _ids(root, 'train.txt')[2]
    path = osp.join(root, 'JPEGImages', img_id + '.jpg')
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:-2] + bytes(3) + b'\xff\xd9')
    ds = _ds(root, 'train.txt', test_mode=False,
             pipeline=[dict(type='LoadImageFromFile')])
    idx = [ds.get_data_info(i)['img_id'] for i in range(len(ds))].index(img_id)
    logger = MMLogger.get_current_instance()
    seen = []
    handler = logging.Handler()
    handler.emit = lambda r: seen.append(r.getMessage())
    logger.addHandler(handler)
    try:
        for _ in range(3):
            ds[idx]
        ds[(idx + 1) % len(ds)]  # a clean image: no warning
    finally:
        logger.removeHandler(handler)
    warned = [m for m in seen if 'Corrupt JPEG data' in m]
    assert len(warned) == 1 and path in warned[0]
    assert 'check_dataset.py' in warned[0]
    assert 'Corrupt JPEG data' in capfd.readouterr().err  # still on stderr


# ------------------------------------------------------ 6. config typos
def test_paramwise_typos_are_refused_with_a_hint():
    names = ['backbone.layers.0.w', 'decode_head.conv.weight',
             'cam_head.classifier.weight']
    ok = dict(paramwise_cfg=dict(bias_decay_mult=0.0, custom_keys={
        'decode_head': dict(lr_mult=10), 'layers.0': dict(decay_mult=0.)}))
    check_paramwise_cfg(ok, names)
    for opt, expect in [
        (dict(custom_keys={'decod_head': dict(lr_mult=10)}),
         "custom_keys['decod_head'] matches no parameter of the model (did "
         "you mean 'decode_head'?)"),
        (dict(custom_keys={'decode_head': dict(lr_mul=10)}),
         "custom_keys['decode_head'].lr_mul: unknown field (did you mean "
         "'lr_mult'?)"),
        (dict(bias_decay_multi=0.),
         "paramwise_cfg.bias_decay_multi: unknown option (did you mean "
         "'bias_decay_mult'?)"),
    ]:
        with pytest.raises(ValueError) as err:
            check_paramwise_cfg(dict(paramwise_cfg=opt), names)
        assert expect in str(err.value)
    assert top_level_typos(['laod_from', 'crop_size', 'load_from',
                            'train_pipeline']) == [
        "config key 'laod_from' is not read by the runner; did you mean "
        "'load_from'? (as written it has no effect)"]


def test_checkpoint_hook_argument_typo_is_refused():
    with pytest.raises(TypeError) as err:
        HOOKS.build(dict(type='AtomicCheckpointHook', intervall=2))
    assert "'intervall' (did you mean 'interval'?)" in str(err.value)


def test_no_shipped_config_has_a_top_level_typo():
    """The typo warning fires only on mistakes: no shipped config has a
    top-level key it would flag (their paramwise_cfg is checked against
    their models in tests/test_configs.py)."""
    import glob
    for path in sorted(glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                                 recursive=True)):
        if '_base_' not in path:
            assert top_level_typos(Config.fromfile(path).keys()) == [], path


def test_typos_stop_train_py_before_the_first_iteration(tmp_path, toy_root):
    cfg = write_cfg(tmp_path, toy_root, max_iters=4)
    for opts, expect in [
        (['default_hooks.checkpoint.intervall=2'],
         "'intervall' (did you mean 'interval'?)"),
        (['optim_wrapper.paramwise_cfg.custom_keys.decod_head.lr_mult=10'],
         "(did you mean 'decode_head'?)"),
    ]:
        proc = subprocess.run(
            [sys.executable, 'tools/train.py', cfg, '--work-dir',
             str(tmp_path / 'w'), '--cfg-options'] + opts, cwd=REPO,
            env=ENV, capture_output=True, text=True, timeout=300)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and expect in out, out[-3000:]
        assert 'Iter(train)' not in out
