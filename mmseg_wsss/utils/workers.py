"""Worker processes that never hang an interrupted tool.

``multiprocessing.Pool`` can deadlock on Ctrl-C: the terminal sends SIGINT
to the whole process group, a worker dies inside ``get()`` while holding
the task queue's lock, and ``Pool.terminate()`` (called by ``with Pool``,
by the finaliser at exit, or by the tool) waits for that lock forever --
the tool prints ``KeyboardInterrupt`` and then hangs with zombie workers.

:class:`WorkerPool` is the small subset of ``Pool`` the tools use
(``apply_async(...).get()`` and ordered ``imap``), built so that stopping
cannot block:

- workers ignore SIGINT (the parent decides when they stop), so a Ctrl-C
  never kills one in the middle of a queue operation;
- :meth:`WorkerPool.kill` sends SIGKILL to every worker and never touches
  a lock the workers could hold; the queues' feeder threads are told not
  to wait at exit;
- a worker that dies on its own (OOM killer, segfault) is reported with
  its exit code instead of leaving ``get()`` waiting forever.

:func:`interruptible` turns SIGTERM into ``KeyboardInterrupt`` for a tool's
main loop, so ``kill PID`` and Ctrl-C take the same clean path.
"""
import contextlib
import itertools
import multiprocessing as mp
import queue
import signal
import traceback
from typing import Any, Callable, Iterable, Iterator, Optional, Tuple

_STOP = None


def _worker_main(tasks, results, initializer, initargs) -> None:
    # the parent owns shutdown: Ctrl-C reaches the whole process group, and
    # a worker killed by it inside tasks.get() would hold the queue's lock
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)
    while True:
        job = tasks.get()
        if job is _STOP:
            return
        job_id, fn, args = job
        try:
            out = (job_id, True, fn(*args))
        except BaseException as e:  # noqa: B902  (reported to the parent)
            out = (job_id, False,
                   f'{type(e).__name__}: {e}\n{traceback.format_exc()}')
        results.put(out)


class WorkerError(RuntimeError):
    """A task raised in a worker (the message holds its traceback), or a
    worker process died."""


class _Result:

    def __init__(self, pool: 'WorkerPool', job_id: int):
        self._pool, self._id = pool, job_id

    def get(self) -> Any:
        return self._pool._wait(self._id)


class WorkerPool:
    """A fixed set of ``spawn`` worker processes (see the module docstring).

    Args:
        processes (int): Number of workers (at least 1).
        initializer (callable, optional): Run once in each worker.
        initargs (tuple): Its arguments.

    Use as a context manager: a normal exit closes the workers after their
    queued work, an exception (``KeyboardInterrupt`` included) kills them.
    """

    def __init__(self, processes: int,
                 initializer: Optional[Callable] = None,
                 initargs: Tuple = ()):
        ctx = mp.get_context('spawn')
        self._tasks = ctx.Queue()
        self._results = ctx.Queue()
        self._ids = itertools.count()
        self._done = {}
        self._procs = []
        for _ in range(max(1, int(processes))):
            p = ctx.Process(target=_worker_main, daemon=True,
                            args=(self._tasks, self._results, initializer,
                                  initargs))
            p.start()
            self._procs.append(p)

    # ------------------------------------------------------------ submit
    def apply_async(self, fn: Callable, args: Tuple = ()) -> _Result:
        job_id = next(self._ids)
        self._tasks.put((job_id, fn, tuple(args)))
        return _Result(self, job_id)

    def imap(self, fn: Callable, items: Iterable,
             max_pending: Optional[int] = None) -> Iterator:
        """``fn(item)`` for each item, in order, with at most
        ``max_pending`` (default 4 per worker) tasks queued."""
        max_pending = max_pending or 4 * len(self._procs)
        pending = []
        for item in items:
            pending.append(self.apply_async(fn, (item, )))
            if len(pending) >= max_pending:
                yield pending.pop(0).get()
        for res in pending:
            yield res.get()

    def _wait(self, job_id: int) -> Any:
        while job_id not in self._done:
            try:
                got, ok, value = self._results.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in self._procs if p.exitcode is not None]
                if dead:
                    self.kill()
                    raise WorkerError(
                        f'a worker process died (exit code '
                        f'{dead[0].exitcode}; -9 is usually the out-of-'
                        'memory killer): use fewer workers') from None
                continue
            self._done[got] = (ok, value)
        ok, value = self._done.pop(job_id)
        if not ok:
            raise WorkerError(f'a worker failed: {value}')
        return value

    # ------------------------------------------------------------ stop
    def close(self, timeout: float = 30.0) -> None:
        """Let the workers finish what is queued, then stop them."""
        for _ in self._procs:
            self._tasks.put(_STOP)
        for p in self._procs:
            p.join(timeout)
        self.kill()

    def kill(self) -> None:
        """Stop every worker now (SIGKILL). Never blocks on a lock."""
        for p in self._procs:
            if p.exitcode is None:
                p.kill()
        for p in self._procs:
            p.join(5.0)
        for q in (self._tasks, self._results):
            q.cancel_join_thread()  # exit does not wait to flush the queue
            q.close()

    def __enter__(self) -> 'WorkerPool':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.kill()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f'signal {signum}')


@contextlib.contextmanager
def interruptible():
    """SIGTERM raises ``KeyboardInterrupt`` inside the block (as Ctrl-C
    does), so one ``except KeyboardInterrupt`` path stops a tool's workers
    for both. The previous handler is restored on exit."""
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
