"""Score batches in forked worker processes, handing results back in file order.

The run's process reads the file and cuts it into batches of lines (``CsvStream.units``);
workers forked after the model is loaded (so PyCaret's import and the unpickling are paid once
and the pages are shared) parse, validate, predict and format each batch. At most ``depth``
batches are in flight, so memory stays flat whatever the file's size.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import queue
import signal
import threading
import traceback
from collections.abc import Iterable, Iterator
from typing import Any

from scorer.batches import BatchResult, score_batch
from scorer.codes import Code
from scorer.errors import DropscoreError
from scorer.model import LoadedModel
from scorer.schema import HeaderPlan
from scorer.units import Unit, parse_unit

MAX_WORKERS = 2
PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # below this, starting workers costs more than it saves
_POLL_S = 1.0


def auto_workers(size: int | None) -> int:
    """Workers for a file of ``size`` bytes: none for small files, on one core, on a busy
    machine (more processes would only share the same CPU, at ~30% more CPU time for handing
    batches over), or where forking is not safe (see ``_safe_to_fork``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    if cores < 2 or size is None or size < PARALLEL_MIN_BYTES:
        return 0
    if not _safe_to_fork():
        return 0
    idle = cores - os.getloadavg()[0]  # this process itself counts for about one
    if idle < 0.5:
        return 0
    return min(cores, MAX_WORKERS)


def _safe_to_fork() -> bool:
    """Fork only from the main thread of a process whose other threads are daemons (a progress
    bar's monitor), never from a thread pool (``sweep``) or a server (the UI)."""
    if "fork" not in mp.get_all_start_methods():
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    return all(t.daemon for t in threading.enumerate() if t is not threading.main_thread())


def fork_safe(model: LoadedModel) -> bool:
    """Whether a forked process can predict with ``model`` (see the engines' ``fork_safe``)."""
    return model.engine.fork_safe()


_frozen_runs = 0  # runs in this process between freeze_heap() and thaw_heap()
_frozen_guard = threading.Lock()


def freeze_heap() -> None:
    """Keep what exists now (the model, the libraries) out of the cyclic collector's passes
    while a run scores: otherwise they are rescanned every few batches (a third of the CPU
    time), and forked workers would touch, so copy, every page the collector walks.

    ``gc.freeze`` is process-wide and the UI and ``watch`` score runs on threads, so runs share
    one freeze, counted under a lock: the first run to start freezes, the last to end thaws
    (one run ending must not thaw the heap under another). A run that starts while the heap is
    frozen does not freeze again: that would also freeze the other runs' batches in flight,
    which would then not be collected while runs overlap."""
    global _frozen_runs
    with _frozen_guard:
        if _frozen_runs == 0:
            gc.freeze()
        _frozen_runs += 1


def thaw_heap() -> None:
    """The end of a run's ``freeze_heap``: the last run to end unfreezes the heap."""
    global _frozen_runs
    with _frozen_guard:
        _frozen_runs -= 1
        if _frozen_runs == 0:
            gc.unfreeze()


class WorkerFailed(DropscoreError):
    """A scoring worker process died or failed; the run stops and the input stays pending."""

    code = Code.WORKER_FAILED


def scored_in_order(
    units: Iterable[Unit], model: LoadedModel, plan: HeaderPlan, workers: int
) -> Iterator[BatchResult]:
    """``score_batch`` of each unit, computed by ``workers`` forked processes, in unit order."""
    ctx = mp.get_context("fork")
    tasks: Any = ctx.Queue()
    results: Any = ctx.Queue()
    parent = os.getpid()
    procs = [
        ctx.Process(
            target=_work,
            args=(tasks, results, model, plan, parent),
            daemon=True,
            name=f"scorer-{i}",
        )
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    depth = 2 * workers
    done: dict[int, BatchResult] = {}
    sent = 0
    wanted = 0
    finished = False
    # a refusal met while reading ahead waits until the units before it are scored, so that
    # an earlier unit's own refusal wins, as it does in one process
    read_error: DropscoreError | None = None
    try:
        it = iter(units)
        exhausted = False
        while True:
            while not exhausted and sent - wanted < depth:
                try:
                    unit = next(it, None)
                except DropscoreError as exc:
                    read_error, unit = exc, None
                if unit is None:
                    exhausted = True
                    break
                tasks.put((sent, unit))
                sent += 1
            if wanted == sent:
                if read_error is not None:
                    raise read_error
                finished = True
                return
            while wanted not in done:
                seq, result = _get(results, procs)
                done[seq] = result
            yield done.pop(wanted)
            wanted += 1
    finally:
        if not finished:  # interrupted or failed: stop the workers now, mid-batch
            for p in procs:
                p.terminate()
        for _ in procs:
            tasks.put(None)
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        tasks.close()
        results.close()
        tasks.cancel_join_thread()
        results.cancel_join_thread()


def _get(results: Any, procs: list[Any]) -> tuple[int, BatchResult]:
    while True:
        try:
            seq, result, error = results.get(timeout=_POLL_S)
        except queue.Empty:
            dead = [p for p in procs if not p.is_alive()]
            if dead:
                raise WorkerFailed(
                    f"scoring worker {dead[0].name} stopped (exit code {dead[0].exitcode}); "
                    "the input stays pending"
                ) from None
            continue
        if error is not None:
            raise error
        return seq, result


def _die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this worker when its parent dies (Linux), however the parent
    dies: a SIGKILLed run (OOM, a task stopped hard) must not leave workers that hold its
    stdout/stderr open, blocking whoever reads them, or that wait on its queue forever.
    (The signal follows the forking thread; ``scored_in_order`` outlives its workers anyway.)"""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no such call
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the call above took effect
        os._exit(1)


def _work(tasks: Any, results: Any, model: LoadedModel, plan: HeaderPlan, parent: int) -> None:
    _die_with_parent(parent)
    # The parent owns shutdown: a worker must not inherit its SIGTERM handler (which raises
    # Interrupted and prints a traceback from the child) nor react to Ctrl-C on its own.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        item = tasks.get()
        if item is None:
            return
        seq, unit = item
        try:
            results.put((seq, score_batch(parse_unit(unit), model, plan), None))
        except BaseException as exc:
            results.put((seq, None, _portable(exc)))
            return


def _portable(exc: BaseException) -> BaseException:
    """The exception if it survives pickling, else a WorkerFailed with its traceback."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        text = "".join(traceback.format_exception(exc))
        return WorkerFailed(f"a scoring worker failed: {exc!r}\n{text}")
    return exc
