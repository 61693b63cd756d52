"""The Ray executor: the same tasks as the local pool, run by actors on a Ray cluster.

One actor per worker CPU holds the process-wide codec registry, so a language model's runtime (ONNX
session, mixer prior) is loaded once per actor and stays loaded across tasks. Tasks carry bytes (file and
block contents travel through Ray's object store) and options, never paths: workers share no file system
with the driver. The driver keeps the queue and hands a task to an actor only when that actor is idle, so
a long task never holds a short one back; results come back as futures the pipelines consume in archive
order, which keeps the archive byte-identical to ``-j 1``.

Faults: a worker process that dies is restarted by Ray and its task retried (``max_restarts``,
``max_task_retries``); a task that still fails fails its future, which the pipeline reports against the
member. Before any work, every actor reports its lmar version and codec registry (versions, models); a
worker that differs from the driver is refused with one line naming the host and the difference.
"""
from __future__ import annotations

import os
import socket
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable

import ray

from . import __version__
from .errors import LmarError
from .registry import get_registry

#: Seconds to wait for every actor to start and answer (a busy node imports lmar and its plugins first).
START_TIMEOUT_S = 180.0
#: Retries of a task whose worker died, and restarts of that worker.
RETRIES = 3
#: A Ray instance lmar starts here runs its workers at lmar's own priority: Ray's default renices workers
#: by +15, which on a busy machine starves the coding (a cluster started by ``ray start`` keeps its own setting).
LOCAL_SYSTEM_CONFIG = {"worker_niceness": 0}
#: Environment the driver passes on to workers: the codec set and device must be the same everywhere.
PASSED_ENV = ("LMAR_LOAD_PLUGINS", "LMAR_DEVICE")


def fingerprint() -> dict[str, Any]:
    """What must agree between driver and workers for archives to be identical: lmar and every codec."""
    registry = get_registry()
    codecs: dict[str, Any] = {}
    for name, cls in sorted(registry.codecs.items()):
        ok, why = cls.availability()
        try:
            info = cls.info()
        except Exception:
            info = {}
        ids = {k: v for k, v in sorted(info.items()) if k == "model" or k.endswith("sha256")}
        codecs[name] = {"version": cls.version, "provider": registry.providers.get(name, ""),
                        "available": bool(ok), "reason": why or "", **ids}
    return {"lmar": __version__, "codecs": codecs}


def differences(mine: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Human-readable differences between two fingerprints (empty: they agree)."""
    out = []
    if mine["lmar"] != theirs["lmar"]:
        out.append(f"lmar {theirs['lmar']} (driver: {mine['lmar']})")
    a, b = mine["codecs"], theirs["codecs"]
    for name in sorted(set(a) | set(b)):
        if name not in b:
            out.append(f"codec {name} missing")
        elif name not in a:
            out.append(f"codec {name} present (not on the driver)")
        elif a[name] != b[name]:
            keys = [k for k in sorted(set(a[name]) | set(b[name])) if k != "reason" and a[name].get(k) != b[name].get(k)]
            if keys == ["available"]:
                state = "available" if b[name]["available"] else f"unavailable ({b[name]['reason']})"
                out.append(f"codec {name} {state} (driver: the opposite)")
            elif keys:
                out.append(f"codec {name}: " + ", ".join(f"{k} {b[name].get(k)} (driver: {a[name].get(k)})" for k in keys))
    return out


class CodecWorker:
    """A Ray actor: keeps the registry (and the models codecs load) alive and runs core task functions."""

    def __init__(self) -> None:
        get_registry()

    def hello(self) -> dict[str, Any]:
        return {"fingerprint": fingerprint(), "host": socket.gethostname(), "pid": os.getpid()}

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


def _check_reachable(address: str) -> None:
    """Fail in seconds, in one line, where ``ray.init`` would retry an unreachable address for minutes."""
    if address == "auto" or address.startswith(("ray://", "local")):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise LmarError(f"--ray-address {address}: expected HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise LmarError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def _one_line(exc: BaseException) -> BaseException:
    """The task's own exception when it raised one (a CodecError stays a CodecError), else a one-line error."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, Exception):
        return cause
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return RuntimeError(f"Ray worker failed ({type(exc).__name__}): {first}")


class RayExecutor:
    """``submit``/``shutdown`` over a set of Ray actors, one task per actor at a time."""

    reads_paths = False

    def __init__(self, jobs: int = 0, address: str | None = None, num_gpus: float | None = None,
                 worker_env: dict[str, str] | None = None) -> None:
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._started_here = False
        if not ray.is_initialized():
            if address:
                _check_reachable(address)
            try:
                # "local": a new instance here, never one a stale /tmp/ray/ray_current_cluster points at
                ray.init(address=address or "local", num_cpus=None if address else (jobs or None),
                         include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                         **({} if address else {"_system_config": LOCAL_SYSTEM_CONFIG}))
            except Exception as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise LmarError(f"cannot start or join {where}: {why}") from None
            self._started_here = True
        try:
            self._start_actors(jobs, num_gpus, worker_env)
        except BaseException:
            self._close_ray()
            raise
        self._lock = threading.Lock()
        self._queue: deque[tuple[Callable[..., Any], tuple[Any, ...], Future]] = deque()
        self._idle = list(reversed(self._actors))
        self._closed = False

    def _start_actors(self, jobs: int, num_gpus: float | None, worker_env: dict[str, str] | None) -> None:
        resources = ray.cluster_resources()
        cpus = int(resources.get("CPU", 0))
        self.workers = jobs or cpus
        if self.workers < 1 or self.workers > cpus:
            raise LmarError(f"the Ray cluster has {cpus} CPUs; cannot run {self.workers} workers")
        if num_gpus is None:
            num_gpus = 1.0 if os.environ.get("LMAR_DEVICE") == "cuda" else 0.0
        if num_gpus and self.workers * num_gpus > resources.get("GPU", 0):
            raise LmarError(f"--device cuda: the Ray cluster has {int(resources.get('GPU', 0))} GPUs "
                            f"for {self.workers} workers (use -j)")
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env.update(worker_env or {})
        actor = ray.remote(CodecWorker).options(num_cpus=1, num_gpus=num_gpus, max_restarts=RETRIES,
                                                max_task_retries=RETRIES,
                                                runtime_env={"env_vars": env} if env else None)
        self._actors = [actor.remote() for _ in range(self.workers)]
        try:
            hellos = ray.get([a.hello.remote() for a in self._actors], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise LmarError(f"Ray workers did not start within {START_TIMEOUT_S:.0f} s") from None
        except ray.exceptions.RayError as exc:
            raise LmarError(f"a Ray worker could not start lmar: {_one_line(exc)} "
                            f"(is the same lmar installed on every node?)") from None
        mine = fingerprint()
        for h in hellos:
            diff = differences(mine, h["fingerprint"])
            if diff:
                raise LmarError(f"Ray worker on {h['host']} (pid {h['pid']}) differs from this machine: "
                                f"{'; '.join(diff)}; install the same lmar and models on every node")
        self.worker_hosts = [(h["host"], h["pid"]) for h in hellos]

    def worker_pids(self) -> list[int]:
        """The actors' current process ids (tests kill one to prove a retry)."""
        return [h["pid"] for h in ray.get([a.hello.remote() for a in self._actors], timeout=START_TIMEOUT_S)]

    # -- the executor interface ----------------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        fut: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("executor is shut down")
            self._queue.append((fn, args, fut))
            started = self._dispatch()
        self._watch(started)
        return fut

    def _dispatch(self) -> list[tuple[Any, Any, Future]]:
        """Hand queued tasks to idle actors (call with the lock held); returns what was started."""
        started = []
        while self._queue and self._idle:
            fn, args, fut = self._queue.popleft()
            if not fut.set_running_or_notify_cancel():
                continue
            actor = self._idle.pop()
            started.append((actor, actor.run.remote(fn, *args), fut))
        return started

    def _watch(self, started: list[tuple[Any, Any, Future]]) -> None:
        for actor, ref, fut in started:  # outside the lock: a finished ref calls back at once
            ref.future().add_done_callback(lambda rf, a=actor, f=fut: self._done(a, f, rf))

    def _done(self, actor: Any, fut: Future, rf: Future) -> None:
        try:
            fut.set_result(rf.result())
        except BaseException as exc:
            fut.set_exception(_one_line(exc))
        with self._lock:
            if self._closed:
                return
            self._idle.append(actor)
            started = self._dispatch()
        self._watch(started)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Stop: queued tasks are cancelled, actors killed (their work in flight is dropped), Ray left."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            queued, self._queue = list(self._queue), deque()
        for _, _, fut in queued:
            fut.cancel()
        if self._started_here:  # leaving takes the actors with it (killing them first only adds log lines)
            self._close_ray()
            return
        for a in self._actors:
            try:
                ray.kill(a, no_restart=True)
            except Exception:
                pass
        self._close_ray()

    def _close_ray(self) -> None:
        if self._started_here and ray.is_initialized():
            ray.shutdown()
