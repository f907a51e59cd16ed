"""Each attack of issue 14, replayed by uploaded code through ``usercode.run_user_code`` as workers run it, fails."""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from tests.security.conftest import running_with_argument, service_limits
from usercode.bwrap import ROOT, gpu_device_nodes


def test_user_code_cannot_read_the_secret_key(run_attack) -> None:
    key_file = Path(settings.VAR_DIR) / "secret_key"
    if not key_file.exists():
        key_file.write_text(f"SENTINEL-KEY-{uuid.uuid4().hex}")
    secrets = [key_file] + [p for p in (ROOT / "var" / "secret_key",) if p.exists()]
    targets = [*secrets, Path("/etc/shadow")]
    outcome = run_attack(
        "def attack(report):\n"
        f"    for path in {[str(p) for p in targets]!r}:\n"
        "        attempt(report, 'read ' + path, lambda: open(path).read())\n"
        f"    attempt(report, 'list var', lambda: os.listdir({str(settings.VAR_DIR)!r}))\n"
        "    attempt(report, 'passwd', lambda: open('/etc/passwd').read())\n"
        "import os\n")
    assert outcome.error is None, outcome.error
    for path in targets:
        assert not outcome.succeeded(f"read {path}"), outcome.report
    # The folders on the way to the scratch folder exist, empty but for it.
    assert set(outcome.report["list var"].get("value", [])) <= {"scratch"}, outcome.report["list var"]
    assert "root:" not in outcome.report["passwd"].get("value", "")
    for path in secrets:
        assert path.read_text().strip() not in outcome.text()


def test_user_code_cannot_read_the_workers_environment_through_proc(run_attack,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    marker = f"TOPSECRET{uuid.uuid4().hex}"
    monkeypatch.setenv("DATABASE_URL", f"postgres://{marker}@db/nasweb")
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://{marker}@redis/0")
    outcome = run_attack(
        "import os\n"
        "def attack(report):\n"
        "    report['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "    report['own'] = dict(os.environ)\n"
        "    for pid in ['1', str(os.getppid()), *map(str, report['pids'])]:\n"
        "        attempt(report, 'environ ' + pid, lambda: open(f'/proc/{pid}/environ', 'rb').read().decode())\n"
        f"    attempt(report, 'worker environ', lambda: open('/proc/{os.getpid()}/environ', 'rb').read().decode())\n")
    assert outcome.error is None, outcome.error
    assert marker not in outcome.text()
    # Its own PID namespace: bwrap's init, the Python child and nothing of the host.
    assert len(outcome.report["pids"]) <= 3, outcome.report["pids"]
    assert os.getpid() not in outcome.report["pids"] or not outcome.succeeded("worker environ")


def test_user_code_can_neither_read_nor_write_another_users_media(run_attack) -> None:
    other = Path(settings.MEDIA_ROOT) / "spaces" / f"other-{uuid.uuid4().hex}"
    other.mkdir(parents=True)
    private = other / "module.py"
    private.write_text(f"PRIVATE = {uuid.uuid4().hex!r}\n")
    planted = other / "planted.py"
    outcome = run_attack(
        "import os\n"
        "def attack(report):\n"
        f"    attempt(report, 'read', lambda: open({str(private)!r}).read())\n"
        f"    attempt(report, 'list', lambda: os.listdir({str(settings.MEDIA_ROOT)!r}))\n"
        f"    attempt(report, 'write', lambda: open({str(planted)!r}, 'w').write('x'))\n"
        f"    attempt(report, 'overwrite', lambda: open({str(private)!r}, 'w').write('x'))\n")
    assert outcome.error is None, outcome.error
    assert not any(outcome.succeeded(key) for key in ("read", "list", "write", "overwrite")), outcome.report
    assert private.read_text() not in outcome.text()
    assert private.read_text().startswith("PRIVATE") and not planted.exists()


def _host_address() -> str | None:
    """This machine's non-loopback address, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_user_code_cannot_connect_to_postgres_redis_or_the_web_server(run_attack) -> None:
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        targets = [("127.0.0.1", 5432), ("127.0.0.1", 6379), ("127.0.0.1", port), ("::1", 5432)]
        if (address := _host_address()) is not None:
            targets += [(address, port), (address, 5432), (address, 6379)]
        # The same connection from the worker works: the test would see a leak.
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        outcome = run_attack(
            "import socket\n"
            "def attack(report):\n"
            f"    for host, port in {targets!r}:\n"
            "        attempt(report, f'{host}:{port}', lambda: socket.create_connection((host, port), timeout=2)"
            ".getpeername())\n"
            "    attempt(report, 'dns', lambda: socket.getaddrinfo('pypi.org', 443))\n")
    assert outcome.error is None, outcome.error
    for host, target_port in targets:
        assert not outcome.succeeded(f"{host}:{target_port}"), outcome.report
    assert not outcome.succeeded("dns")


def test_user_code_writes_nowhere_but_its_scratch_folder(run_attack) -> None:
    name = f"pwned-{uuid.uuid4().hex}"
    outside = [ROOT / name, ROOT / "nastune" / name, ROOT / "usercode" / name, Path(settings.VAR_DIR) / name,
               Path(settings.MEDIA_ROOT) / name, Path(sys.prefix) / name, Path("/usr") / name, Path("/etc") / name]
    private = [Path("/tmp") / name, Path("/dev/shm") / name]
    # Under /tmp (the test's var folder, say) a write lands in the sandbox's private /tmp, never on the host.
    private += [path for path in outside if Path("/tmp") in path.parents]
    outside = [path for path in outside if path not in private]
    outcome = run_attack(
        "def attack(report):\n"
        f"    for path in {[str(p) for p in outside + private]!r} + ['scratch-file']:\n"
        "        attempt(report, path, lambda: open(path, 'w').write('pwned'))\n")
    assert outcome.error is None, outcome.error
    assert outcome.succeeded("scratch-file"), outcome.report  # the one writable folder works
    for path in outside:
        assert not outcome.succeeded(str(path)), outcome.report
    for path in outside + private:
        assert not path.exists(), f"{path} was written from the sandbox"


# cgroup=False: as on a worker without a writable cgroup (RLIMIT_NPROC and the watchdog).
TREE_LIMITS = [pytest.param(True, id="cgroup"), pytest.param(False, id="watchdog")]


@pytest.mark.slow
@pytest.mark.parametrize("cgroup", TREE_LIMITS)
def test_a_thousand_forks_do_not_all_start(run_attack, cgroup: bool) -> None:
    outcome = run_attack(
        "import os, time\n"
        "def attack(report):\n"
        "    report['started'] = 0\n"
        "    for _ in range(1000):\n"
        "        try:\n"
        "            pid = os.fork()\n"
        "        except OSError as exc:\n"
        "            report['refused'] = f'{type(exc).__name__}: {exc}'\n"
        "            break\n"
        "        if pid == 0:\n"
        "            try:\n"
        "                time.sleep(60)\n"
        "            finally:\n"
        "                os._exit(0)\n"
        "        report['started'] += 1\n", cgroup=cgroup)
    # Either the forks were refused, or the sandbox was killed for them: never 1,000 processes.
    if outcome.error is None:
        assert outcome.report["started"] < 1000
        assert outcome.report["started"] <= settings.NASWEB_SANDBOX_PROCESSES
        assert "refused" in outcome.report
    else:
        assert outcome.error.kind in ("processes", "crashed"), outcome.error


@pytest.mark.slow
@pytest.mark.parametrize("cgroup", TREE_LIMITS)
def test_processes_together_cannot_hold_more_than_the_memory_limit(run_attack, cgroup: bool) -> None:
    outcome = run_attack(
        "import os, select, time\n"
        "def attack(report):\n"
        "    read_end, write_end = os.pipe()\n"
        "    for _ in range(4):\n"
        "        if os.fork() == 0:\n"
        "            try:\n"
        "                block = b'x' * (700 * 1024 * 1024)  # written, so resident\n"
        "                os.write(write_end, b'1')\n"
        "                time.sleep(30)\n"
        "            finally:\n"
        "                os._exit(0)\n"
        "    held, deadline = 0, time.monotonic() + 20\n"
        "    while held < 4 and time.monotonic() < deadline:\n"
        "        if select.select([read_end], [], [], 0.5)[0]:\n"
        "            held += len(os.read(read_end, 4))\n"
        "    report['held'] = held\n",
        limits=service_limits(memory_mb=1024), cgroup=cgroup)
    # 4 x 700 MB against 1 GB: the kernel (or the watchdog) must stop them.
    if outcome.error is None:
        assert outcome.report["held"] < 2, outcome.report
    else:
        assert outcome.error.kind == "memory", outcome.error


def test_a_setsid_orphan_does_not_outlive_its_sandbox(run_attack) -> None:
    marker = f"{time.time_ns() % 10**6 + 3000}.25"
    outcome = run_attack(
        "import os\n"
        "def attack(report):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            open('orphan-started', 'w').close()\n"
        f"            os.execvp('sleep', ['sleep', {marker!r}])\n"
        "        os._exit(0)\n"
        "    os.wait()\n"
        "    import time\n"
        "    for _ in range(100):\n"
        "        if os.path.exists('orphan-started'):\n"
        "            break\n"
        "        time.sleep(0.05)\n"
        "    report['started'] = os.path.exists('orphan-started')\n")
    assert outcome.error is None, outcome.error
    assert outcome.report["started"]
    assert running_with_argument(marker) == []


def test_files_in_dev_shm_and_tmp_are_gone_when_the_sandbox_ends(run_attack) -> None:
    name = f"nasweb-attack-{uuid.uuid4().hex}"
    outcome = run_attack(
        "def attack(report):\n"
        "    block = b'x' * (100 * 1024 * 1024)\n"
        f"    attempt(report, 'shm', lambda: open('/dev/shm/{name}', 'wb').write(block))\n"
        f"    attempt(report, 'tmp', lambda: open('/tmp/{name}', 'wb').write(block))\n")
    assert outcome.error is None, outcome.error
    assert outcome.succeeded("shm") and outcome.succeeded("tmp"), outcome.report  # private, but there
    assert not (Path("/dev/shm") / name).exists() and not (Path("/tmp") / name).exists()
    second = run_attack(f"import os\ndef attack(report):\n    report['seen'] = os.path.exists('/dev/shm/{name}')\n")
    assert second.report["seen"] is False


def test_user_code_runs_unprivileged_in_fresh_namespaces(run_attack) -> None:
    outcome = run_attack(
        "import os\n"
        "def attack(report):\n"
        "    report['uid'] = os.getuid()\n"
        "    report['caps'] = [l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1]\n"
        "    report['ns'] = {n: os.readlink(f'/proc/self/ns/{n}') for n in ('user', 'pid', 'net', 'ipc', 'mnt')}\n"
        "    attempt(report, 'setuid', lambda: os.setuid(0))\n"
        "    import ctypes\n"
        "    report['new user namespace'] = ctypes.CDLL(None, use_errno=True).unshare(0x10000000)  # CLONE_NEWUSER\n")
    assert outcome.error is None, outcome.error
    assert outcome.report["uid"] == 65534
    assert int(outcome.report["caps"], 16) == 0
    assert not outcome.succeeded("setuid")
    assert outcome.report["new user namespace"] == -1  # none nested: no capabilities over its mounts
    for name, inode in outcome.report["ns"].items():
        assert inode != os.readlink(f"/proc/self/ns/{name}"), f"the sandbox shares the {name} namespace"


def test_a_gpu_evaluation_sees_only_the_device_nodes_of_its_gpu(run_attack) -> None:
    nodes, visible = gpu_device_nodes("1,3")
    assert [n for n in nodes if n.startswith("/dev/nvidia") and n[11:].isdigit()] == ["/dev/nvidia1", "/dev/nvidia3"]
    assert visible == "0,1"
    outcome = run_attack(
        "import os\n"
        "def attack(report):\n"
        "    report['nodes'] = sorted(n for n in os.listdir('/dev') if n.startswith('nvidia'))\n"
        "    report['visible'] = os.environ.get('CUDA_VISIBLE_DEVICES')\n",
        gpu="1")
    assert outcome.error is None, outcome.error
    allowed = {"nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "nvidia-caps"}
    assert set(outcome.report["nodes"]) <= allowed
    assert outcome.report["visible"] == "0"
