"""What keeps a training run's work dir whole: atomic writes, the newest
*complete* checkpoint, and one run per work dir.

- :func:`write_atomic`: temporary file, ``fsync``, ``os.replace`` -- a
  reader (or a run resumed after ``kill -9``) sees the old file or the new
  one, never a part.
- :func:`checkpoint_is_complete` / :func:`find_resumable_checkpoint`:
  ``--resume`` follows ``last_checkpoint`` when it names a complete file
  and otherwise falls back to the newest complete ``iter_*.pth`` /
  ``epoch_*.pth``, saying why.
- :func:`lock_work_dir`: an advisory ``flock`` on ``WORK_DIR/.train.lock``;
  the kernel releases it when the process ends in any way (``kill -9``
  included), so a lock left by a killed run is never stale.
"""
import datetime
import os
import os.path as osp
import re
import socket
import sys
import zipfile
from typing import Callable, Optional, Tuple

LOCK_NAME = '.train.lock'
_CKPT_RE = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str, data, fsync: bool = True) -> None:
    """Write ``data`` (str or bytes) to ``path`` atomically."""
    tmp = osp.join(osp.dirname(path) or '.',
                   f'.{osp.basename(path)}.tmp{os.getpid()}')
    with open(tmp, 'wb' if isinstance(data, bytes) else 'w') as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if fsync:
        _fsync_dir(osp.dirname(path) or '.')


def commit_file(tmp: str, path: str) -> None:
    """``fsync`` a finished temporary file and rename it to ``path``."""
    with open(tmp, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(osp.dirname(path) or '.')


def checkpoint_is_complete(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file: a zip archive whose
    central directory (written last) is readable. A file cut short by a
    crash during the save fails this."""
    if not osp.isfile(path) or osp.getsize(path) == 0:
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return bool(z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def find_resumable_checkpoint(
        work_dir: str,
        log: Callable[[str], None] = lambda msg: None) -> Optional[str]:
    """The checkpoint ``--resume`` should load from ``work_dir``.

    ``last_checkpoint`` when it names a complete file; otherwise the newest
    complete ``iter_N.pth`` / ``epoch_N.pth`` in the work dir, and ``log``
    says why (empty or missing ``last_checkpoint``, its file deleted or
    cut short). ``None`` when there is none.
    """
    marker = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(marker):
        with open(marker) as f:
            named = f.read().strip()
        if named and '://' in named:
            return named  # a remote out_dir: mmengine's business
        if named and checkpoint_is_complete(named):
            return named
        reason = ('is empty' if not named else
                  f'names {named}, which ' +
                  ('does not exist' if not osp.exists(named) else
                   'is incomplete (cut short while it was written)'))
    else:
        reason = 'does not exist'
    found = []
    if osp.isdir(work_dir):
        for name in os.listdir(work_dir):
            m = _CKPT_RE.match(name)
            if m:
                found.append((int(m.group(2)), osp.join(work_dir, name)))
    for _, path in sorted(found, reverse=True):
        if checkpoint_is_complete(path):
            if named is not None or osp.isfile(marker):
                log(f'{marker} {reason}; resuming from the newest complete '
                    f'checkpoint in the work dir instead: {path}')
            return path
        log(f'skipping {path}: incomplete (cut short while it was written)')
    return None


def _holder(lock_path: str) -> str:
    try:
        with open(lock_path) as f:
            return f.read().strip() or 'unknown process'
    except OSError:
        return 'unknown process'


def lock_work_dir(work_dir: str) -> Tuple[object, Optional[str]]:
    """Take the work dir's training lock, or exit naming its holder.

    Returns:
        (file object that holds the lock -- keep it open for the run's
        life; the previous holder's description when a run that ended
        without cleaning up -- a killed one -- had it, else None).

    Raises:
        SystemExit: when another live process holds the lock.
    """
    import fcntl
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    f = open(path, 'a+')
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _holder(path)
        f.close()
        raise SystemExit(
            f'another training run is using the work dir {work_dir} '
            f'({holder}). Two runs in one work dir would mix their logs '
            'and overwrite each other\'s checkpoints: wait for it to end, '
            'stop it, or pass another --work-dir.') from None
    f.seek(0)
    previous = f.read().strip() or None
    f.seek(0)
    f.truncate()
    f.write(f'pid {os.getpid()} on {socket.gethostname()}, started '
            f'{datetime.datetime.now().isoformat(timespec="seconds")}: '
            f'{" ".join(sys.argv)}')
    f.flush()
    return f, previous


def release_work_dir(f) -> None:
    """Release the lock taken by :func:`lock_work_dir` (a clean end)."""
    if f is None:
        return
    try:
        f.seek(0)
        f.truncate()
        f.close()
    except (OSError, ValueError):
        pass
