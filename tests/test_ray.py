"""The Ray executor: archives identical to one machine's, tasks that carry bytes, faults, errors.

One real two-node Ray cluster serves the whole module (started once: about 15 s): a head node with no
CPUs, where this test process is the driver, and a worker node with 2 CPUs, so every task runs on the
worker node. Where the machine allows a private mount namespace (root), the worker node is started in
one with an empty tmpfs over the directory holding the driver's input files: its workers cannot see
them, so an archive that comes out right proves no task read the driver's files. Elsewhere the worker
node sees them and only the bytes-only check on submitted tasks stands. Skipped when Ray is not installed.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import lmar  # noqa: E402
from lmar.archive import CreateOptions, GroupingOptions  # noqa: E402
from lmar.errors import LmarError  # noqa: E402
from lmar.selection import SelectOptions  # noqa: E402

from conftest import EXAMPLE_PLUGIN, assert_clean, classical_codecs, example_plugin_installed, run_lmar  # noqa: E402

RAY_BIN = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 120


@dataclass
class Cluster:
    address: str
    #: Where the driver's input files live; hidden from the worker node when ``isolated``.
    files: Path
    isolated: bool


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _can_unshare() -> bool:
    if not shutil.which("unshare"):
        return False
    try:
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _stop(proc: subprocess.Popen) -> None:
    """Stop one ``ray start --block`` and the Ray processes it started (its own process group)."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    files = tmp_path_factory.mktemp("driver-files")
    logs = tmp_path_factory.mktemp("ray-logs")
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a throwaway local cluster: no token to hand around
    os.environ.pop("RAY_ADDRESS", None)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--block", "--disable-usage-stats"]
    procs = [subprocess.Popen([RAY_BIN, "start", "--head", f"--port={port}", "--num-cpus=0",
                               "--include-dashboard=false", *common], start_new_session=True,
                              stdout=open(logs / "head.log", "w"), stderr=subprocess.STDOUT)]
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    pytest.fail(f"ray head did not start: {(logs / 'head.log').read_text()[-2000:]}")
                time.sleep(0.5)
        isolated = _can_unshare()
        worker = [RAY_BIN, "start", f"--address={address}", "--num-cpus=2", *common]
        if isolated:
            worker = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                      f'mount -t tmpfs none "$0" && exec "$@"', str(files), *worker]
        procs.append(subprocess.Popen(worker, start_new_session=True, stdout=open(logs / "worker.log", "w"),
                                      stderr=subprocess.STDOUT))
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        while ray.cluster_resources().get("CPU", 0) < 2:
            if time.monotonic() > deadline or procs[1].poll() is not None:
                pytest.fail(f"ray worker node did not join: {(logs / 'worker.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield Cluster(address, files, isolated)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for p in reversed(procs):
            _stop(p)
        current = Path("/tmp/ray/ray_current_cluster")  # what `ray stop` would remove: ours only
        if current.exists() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _tree(root: Path) -> Path:
    """Small text files (one solid block), a file coded alone (read by the driver), a duplicate, binary."""
    root.mkdir(parents=True, exist_ok=True)
    words = b"the quick brown fox jumps over the lazy dog while archivers count bytes "
    for i in range(6):
        (root / f"note{i}.txt").write_bytes(words * (20 + 7 * i) + str(i).encode())
    (root / "big.txt").write_bytes(b"".join(b"line %d: %s\n" % (i, words[: i % 60]) for i in range(4000)))
    (root / "copy.txt").write_bytes((root / "note3.txt").read_bytes())
    (root / "blob.bin").write_bytes(bytes(range(256)) * 300)
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "empty").write_bytes(b"")
    return root


def _options(**kw) -> CreateOptions:
    select = SelectOptions(candidates=classical_codecs())
    return CreateOptions(select=select, grouping=GroupingOptions(solid_limit=16 << 10), **kw)


def _create(root: Path, out: Path, **kw) -> bytes:
    """Archive ``root`` under its own name (relative: the archive then extracts anywhere)."""
    here = os.getcwd()
    os.chdir(root.parent)
    try:
        with lmar.open(str(out), "w", options=_options(**kw)) as w:
            results = w.add([root.name])
    finally:
        os.chdir(here)
    assert not [r for r in results if r.error], results
    return out.read_bytes()


def test_worker_node_cannot_see_the_drivers_files(cluster):
    if not cluster.isolated:
        pytest.skip("no private mount namespace here (needs root): the worker node shares this file system")
    (cluster.files / "secret.txt").write_bytes(b"only the driver reads this")

    @ray.remote(num_cpus=1)
    def look(path: str) -> tuple[bool, list[str]]:
        return os.path.exists(path), os.listdir(os.path.dirname(path))

    assert ray.get(look.remote(str(cluster.files / "secret.txt")), timeout=60) == (False, [])


def test_ray_archive_is_identical_and_tasks_carry_bytes(cluster, tmp_path, monkeypatch):
    from lmar import ray_executor

    root = _tree(cluster.files / "tree")
    one = _create(root, tmp_path / "j1.lmar", jobs=1)
    pool = _create(root, tmp_path / "j2.lmar", jobs=2)
    shipped: list[tuple[str, list[type]]] = []
    submit = ray_executor.RayExecutor.submit

    def spy(self, fn, *args):
        shipped.append((fn.__name__, [type(a) for a in args]))
        assert not any(isinstance(a, (str, os.PathLike)) for a in args), (fn.__name__, args)
        return submit(self, fn, *args)

    monkeypatch.setattr(ray_executor.RayExecutor, "submit", spy)
    on_ray = _create(root, tmp_path / "ray.lmar", executor="ray", ray_address=cluster.address)
    assert one == pool == on_ray
    assert {name for name, _ in shipped} == {"plan_bytes"} and len(shipped) >= 3
    assert all(bytes in types for _, types in shipped)


def test_extract_and_test_decode_on_ray(cluster, tmp_path, monkeypatch):
    from lmar import prefetch

    root = _tree(cluster.files / "tree2")
    archive = tmp_path / "a.lmar"
    _create(root, archive, jobs=1)
    served: list[int] = []
    close = prefetch.BlockPrefetcher.close
    monkeypatch.setattr(prefetch.BlockPrefetcher, "close", lambda self: (served.append(self.served), close(self))[1])
    with lmar.open(str(archive)) as r:
        report = r.extractall(str(tmp_path / "out"), executor="ray", ray_address=cluster.address)
    assert report.ok, report.failures
    for p in root.rglob("*"):
        if p.is_file():
            assert (tmp_path / "out" / p.relative_to(root.parent)).read_bytes() == p.read_bytes(), p
    with lmar.open(str(archive)) as r:
        assert r.test(executor="ray", ray_address=cluster.address, jobs=2).ok
    assert len(served) == 2 and all(n >= 3 for n in served), served


def test_worker_killed_mid_task_is_retried_and_the_archive_is_identical(cluster, tmp_path, monkeypatch):
    from lmar import ray_executor

    monkeypatch.chdir(cluster.files)
    root = cluster.files / "lm"
    root.mkdir()
    text = (Path(__file__).read_bytes() * 3)[:9000]
    for i in range(3):
        (root / f"f{i}.py").write_bytes(text[i * 1000:] + text[: i * 1000])
    opts = dict(select=SelectOptions(codec="lm"), grouping=GroupingOptions(solid=False))
    with lmar.open(str(tmp_path / "j1.lmar"), "w", options=CreateOptions(jobs=1, **opts)) as w:
        w.add(["lm"])
    killed: list[int] = []
    start = ray_executor.RayExecutor._start_actors

    def start_then_kill(self, *args):
        start(self, *args)
        pid = self.worker_hosts[0][1]

        def kill():
            os.kill(pid, signal.SIGKILL)  # the actor is coding its first file (several seconds of lm)
            killed.append(pid)
        threading.Timer(1.0, kill).start()

    monkeypatch.setattr(ray_executor.RayExecutor, "_start_actors", start_then_kill)
    with lmar.open(str(tmp_path / "ray.lmar"), "w",
                   options=CreateOptions(executor="ray", ray_address=cluster.address, **opts)) as w:
        results = w.add(["lm"])
    assert killed and not [r.error for r in results if r.error]
    assert (tmp_path / "ray.lmar").read_bytes() == (tmp_path / "j1.lmar").read_bytes()


def test_cli_create_on_the_cluster_matches_local(cluster, tmp_path):
    root = _tree(cluster.files / "tree3")
    local = run_lmar("create", "-q", "-j", "1", "--level", "fast", str(tmp_path / "l.lmar"), root.name,
                     cwd=root.parent)
    assert local.rc == 0, local.err
    run = run_lmar("create", "-q", "--level", "fast", "--executor", "ray", str(tmp_path / "r.lmar"), root.name,
                   cwd=root.parent, env={"RAY_ADDRESS": cluster.address})
    assert run.rc == 0, run.err
    assert_clean(run)
    assert (tmp_path / "l.lmar").read_bytes() == (tmp_path / "r.lmar").read_bytes()


def test_worker_with_other_codecs_is_refused(cluster):
    if not example_plugin_installed():
        pytest.skip("the example plugin is not installed")
    from lmar.ray_executor import RayExecutor

    with pytest.raises(LmarError, match=r"Ray worker on .* differs from this machine: codec .* present"):
        RayExecutor(address=cluster.address, jobs=1, worker_env={"LMAR_LOAD_PLUGINS": EXAMPLE_PLUGIN})


def test_cuda_needs_gpus_on_the_cluster(cluster, monkeypatch):
    from lmar.ray_executor import RayExecutor

    monkeypatch.setenv("LMAR_DEVICE", "cuda")
    with pytest.raises(LmarError, match="GPUs"):
        RayExecutor(address=cluster.address, jobs=1)


def test_unreachable_ray_address_is_one_line(tmp_path):
    port = _free_port()  # nothing listens there
    for extra, env in ((["--ray-address", f"127.0.0.1:{port}"], None), ([], {"RAY_ADDRESS": f"127.0.0.1:{port}"})):
        (tmp_path / "in.txt").write_bytes(b"hello\n")
        run = run_lmar("create", "-q", "--executor", "ray", *extra, str(tmp_path / "out.lmar"),
                       str(tmp_path / "in.txt"), env=env, timeout=60)
        assert run.rc == 2
        assert_clean(run)
        assert run.err.strip().splitlines() == [f"lmar: cannot reach the Ray cluster at 127.0.0.1:{port}: "
                                                f"Connection refused"]
        assert not (tmp_path / "out.lmar").exists()
        assert not list(tmp_path.glob(".lmar-*"))


def test_local_runs_never_import_ray():
    code = ("import sys, lmar.cli; lmar.cli.main(['codecs']); "
            "sys.exit(1 if any(m == 'ray' or m.startswith('ray.') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60).returncode == 0
