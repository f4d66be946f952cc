"""OS isolation layers: set up once in the fork server (subreaper, network/IPC/mount namespaces, a
pids cgroup, private /tmp, hidden data dirs) and per child (session, limits, unprivileged uid, no new
privileges). Each layer is detected, not assumed; `Layers` says which are active for /healthz.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass, field
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWNS = 0x00020000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MNT_DETACH = 2
_MS_PRIVATE = 1 << 18

UID_BASE = 1_000_000  # sandbox uids: UID_BASE + forkserver_pid * MAX_SLOTS + slot (unique per server)
MAX_SLOTS = 128
JUDGE_UID_OFFSET = 64  # judge uids: the upper half of a server's uid range (so at most 64 slots)
TMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")  # world-writable: private and swept per run
# Directories the sandbox should not see (datasets, other problems' files, home directories).
HIDE_DIRS = ("/work", "/home", "/root", "/srv", "/mnt", "/media", "/data", "/opt", "/var/lib", "/var/log")


class SandboxUnavailable(RuntimeError):
    """The minimum isolation (separate process, limits, whole-group kill) is missing on this host."""


@dataclass
class Layers:
    """Which isolation layers are active (reported by /healthz)."""

    process: bool = False  # fork per execution, own session and process group, group kill
    rlimits: bool = False  # CPU, address space, file size, open files, processes
    subreaper: bool = False  # the fork server reaps every orphan of its children
    uid_drop: bool = False  # each slot runs as its own unprivileged uid (RLIMIT_NPROC enforced)
    no_new_privs: bool = False
    pids_cgroup: str = ""  # cgroup path bounding the fork server's process count ("" = none)
    netns: bool = False  # empty network namespace: no route anywhere, not even loopback
    ipcns: bool = False
    mountns: bool = False  # private /tmp, /var/tmp, /dev/shm; data dirs hidden
    proc_hidepid: bool = False  # other users' processes invisible in /proc
    audit_guard: bool = False  # in-process guard against frame inspection, ctypes, spawning
    hidden_dirs: list[str] = field(default_factory=list)
    importable_dirs: list[str] = field(default_factory=list)  # left visible, read-only, in hidden dirs
    memory_cgroup: str = ""  # per-slot memory cgroups under this path ("" = none, see the reason)
    memory_cgroup_reason: str = ""  # why there is none

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _call(fn: Any, *args: Any) -> int:
    rc = fn(*args)
    return 0 if rc == 0 else ctypes.get_errno() or -1


def setup_server(workers: int, nproc_per_run: int, hide: bool = True) -> Layers:
    """Isolation for the fork server process itself; call once, single-threaded, after preloading."""
    layers = Layers(process=True, rlimits=True)
    if not (hasattr(os, "setsid") and hasattr(os, "killpg") and hasattr(resource, "RLIMIT_AS")):
        raise SandboxUnavailable("this platform lacks setsid/killpg/RLIMIT_AS: cannot sandbox executions")
    layers.subreaper = _call(_libc.prctl, _PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    layers.uid_drop = os.geteuid() == 0
    layers.pids_cgroup = _join_pids_cgroup(workers * (nproc_per_run + 4) + 16)
    layers.memory_cgroup, layers.memory_cgroup_reason = make_memory_cgroups(min(workers, JUDGE_UID_OFFSET))
    layers.netns = _call(_libc.unshare, _CLONE_NEWNET) == 0
    layers.ipcns = _call(_libc.unshare, _CLONE_NEWIPC) == 0
    if os.geteuid() == 0 and _call(_libc.unshare, _CLONE_NEWNS) == 0:
        layers.mountns = _call(_libc.mount, None, b"/", None, _MS_REC | _MS_PRIVATE, None) == 0
    if layers.mountns:
        for path in TMP_DIRS:
            if os.path.isdir(path):
                _mount_tmpfs(path, b"size=512m,nr_inodes=65536,mode=1777")
        if hide:
            keep = importable_dirs()
            layers.hidden_dirs = [p for p in HIDE_DIRS if os.path.isdir(p) and _hide_keeping(p, keep)]
            layers.importable_dirs = keep
        layers.proc_hidepid = (
            _call(_libc.mount, b"proc", b"/proc", b"proc", _MS_NOSUID | _MS_NODEV, b"hidepid=2") == 0
        )
    return layers


RUN_TMP_OPTIONS = b"size=64m,nr_inodes=8192,mode=1777"


def private_tmp(scratch: str) -> bool:
    """Give this (forked, still root) process a mount namespace of its own with fresh tmpfs on the
    world-writable dirs, the run's scratch dir bound back at its path: nothing a run leaves in /tmp
    or /dev/shm outlives it or reaches a neighbour. False where the host does not allow it."""
    if _call(_libc.unshare, _CLONE_NEWNS) != 0:
        return False
    if _call(_libc.mount, None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return False
    dirfd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)  # in the new namespace's copy of /tmp
    try:
        for path in TMP_DIRS:
            if os.path.isdir(path):
                _mount_tmpfs(path, RUN_TMP_OPTIONS)
        os.makedirs(scratch, mode=0o700, exist_ok=True)
        source = f"/proc/self/fd/{dirfd}".encode()
        return _call(_libc.mount, source, scratch.encode(), None, _MS_BIND, None) == 0
    finally:
        os.close(dirfd)


def importable_dirs() -> list[str]:
    """The interpreter's standard library and every site-packages on sys.path: what a program or a
    test may import. Other sys.path entries (a source checkout, PYTHONPATH) stay hidden: they can hold
    test data. Outermost directories only."""
    stdlib = [os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")]
    found: list[str] = []
    for entry in [*stdlib, *sys.path]:
        path = os.path.realpath(entry) if entry else ""
        if not os.path.isdir(path):
            continue
        if path in stdlib or any(part in path.split(os.sep) for part in ("site-packages", "dist-packages")):
            found.append(path)
    found.sort(key=len)
    outer: list[str] = []
    for path in found:
        if not any(path == o or path.startswith(o + os.sep) for o in outer):
            outer.append(path)
    return outer


def _hide_keeping(path: str, keep: list[str]) -> bool:
    """A read-only tmpfs over `path`, with the `keep` directories below it bound back read-only at
    their own paths (staged through a bind mount made before the tmpfs covers them)."""
    inside = [k for k in keep if k.startswith(path.rstrip(os.sep) + os.sep)]
    staged: list[tuple[str, str]] = []
    for i, k in enumerate(inside):
        stage = f"/tmp/.rl-keep-{os.getpid()}-{i}"
        os.makedirs(stage, exist_ok=True)
        if _call(_libc.mount, k.encode(), stage.encode(), None, _MS_BIND | _MS_REC, None) == 0:
            staged.append((stage, k))
    if not _mount_tmpfs(path, b"size=1m,mode=755"):
        return False
    for stage, k in staged:
        os.makedirs(k, mode=0o755, exist_ok=True)
        _call(_libc.mount, stage.encode(), k.encode(), None, _MS_BIND | _MS_REC, None)
        _call(
            _libc.mount,
            None,
            k.encode(),
            None,
            _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV,
            None,
        )
        _libc.umount2(stage.encode(), _MNT_DETACH)
        os.rmdir(stage)
    flags = _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV
    return _call(_libc.mount, None, path.encode(), None, flags, None) == 0


def _mount_tmpfs(path: str, options: bytes, read_only: bool = False) -> bool:
    flags = _MS_NOSUID | _MS_NODEV | (_MS_RDONLY if read_only else 0)
    return _call(_libc.mount, b"tmpfs", path.encode(), b"tmpfs", flags, options) == 0


def _join_pids_cgroup(limit: int) -> str:
    """Move this process into a fresh pids cgroup (v1 or v2) capped at `limit` tasks; "" if impossible."""
    for root in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
        if not os.path.exists(os.path.join(root, "cgroup.procs")):
            continue
        if root == "/sys/fs/cgroup" and "pids" not in _read(os.path.join(root, "cgroup.controllers")):
            continue
        path = os.path.join(root, f"rlcoder-reward-{os.getpid()}")
        try:
            os.makedirs(path, exist_ok=True)
            _write(os.path.join(path, "pids.max"), str(limit))
            _write(os.path.join(path, "cgroup.procs"), str(os.getpid()))
        except OSError:
            try:
                os.rmdir(path)
            except OSError:
                pass
            continue
        return path
    return ""


def cgroup_pids(path: str) -> list[int]:
    return [int(x) for x in _read(os.path.join(path, "cgroup.procs")).split()]


def cgroup_task_count(path: str) -> int:
    try:
        return int(_read(os.path.join(path, "pids.current")).strip() or 0)
    except ValueError:
        return -1


def remove_cgroup(path: str, wait_s: float = 5.0, reap: bool = False) -> bool:
    """Kill whatever is left in a fork server's cgroup and remove it. Killed processes stay in it as
    zombies until reaped (by us when `reap`, we being their subreaper; else by init), so this polls
    for up to `wait_s`; returns whether it is gone."""
    deadline = time.monotonic() + wait_s
    while os.path.exists(path):
        for pid in cgroup_pids(path):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        while reap:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        try:
            os.rmdir(path)
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
    return True


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


MEMORY_V1_ROOT = "/sys/fs/cgroup/memory"
MEMORY_SLACK_BYTES = 256 << 20  # over the job's memory_mb: copy-on-write pages of the preloaded heap


def make_memory_cgroups(slots: int) -> tuple[str, str]:
    """A memory cgroup per worker slot (cgroup v1 `memory.limit_in_bytes`: it counts the memfd and
    tmpfs pages a run writes, which RLIMIT_AS does not). Returns (base path, "") or ("", why not)."""
    if not os.path.exists(os.path.join(MEMORY_V1_ROOT, "memory.limit_in_bytes")):
        return "", "no cgroup v1 memory controller at /sys/fs/cgroup/memory (v2 memory.max: not implemented)"
    base = os.path.join(MEMORY_V1_ROOT, f"rlcoder-reward-{os.getpid()}")
    try:
        os.mkdir(base)
        for slot in range(slots):
            os.mkdir(os.path.join(base, f"s{slot}"))
    except OSError as exc:
        remove_memory_cgroups(base)
        return "", f"cannot create memory cgroups: {exc}"
    return base, ""


def memory_slot(base: str, slot: int) -> str:
    return os.path.join(base, f"s{slot}")


def set_memory_limit(path: str, limit_bytes: int) -> int:
    """Set a slot's limit before its run; returns the slot's OOM-kill count so far."""
    try:
        _write(os.path.join(path, "memory.limit_in_bytes"), str(limit_bytes))
    except OSError:
        pass  # usage above the new limit (pages of the last run not yet reclaimed): keep the old one
    return memory_oom_kills(path)


def memory_oom_kills(path: str) -> int:
    for line in _read(os.path.join(path, "memory.oom_control")).splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def join_memory_cgroup(path: str) -> None:
    """Move this (forked, still root) process into a slot's memory cgroup."""
    _write(os.path.join(path, "cgroup.procs"), str(os.getpid()))


def remove_memory_cgroups(base: str) -> None:
    if not base or not os.path.isdir(base):
        return
    for entry in os.listdir(base):
        sub = os.path.join(base, entry)
        if entry.startswith("s") and os.path.isdir(sub):
            remove_cgroup(sub, wait_s=2.0)
    try:
        os.rmdir(base)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Per child


@dataclass(frozen=True)
class ChildLimits:
    cpu_s: int  # RLIMIT_CPU soft limit; SIGXCPU beyond it
    address_space_bytes: int
    file_size_bytes: int = 32 << 20
    open_files: int = 256
    processes: int = 32  # per uid (one uid per slot), threads included


def enter_child(
    uid: int,
    limits: ChildLimits,
    scratch: str,
    out_fd: int,
    result_fd: int,
    layers: Layers,
    keep_fd: int = -1,
    gid: int | None = None,
) -> int:
    """Turn the freshly forked child into a sandbox: returns the result fd's new number (3). A
    `keep_fd` becomes fd 4 (the judge's channel to the program); `gid` defaults to `uid` (the judge
    shares the program's group, so that both can use the run's scratch dir).

    Order matters: everything that needs root (fd plumbing, limits, scratch ownership) happens
    before the uid drop, and the drop is verified before any untrusted code can run.
    """
    os.setsid()
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversize writes fail with EFBIG instead
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    if keep_fd >= 0:
        keep_fd = os.dup(keep_fd) if keep_fd == 3 else keep_fd
        os.dup2(result_fd, 3)
        if keep_fd != 4:
            os.dup2(keep_fd, 4)
        os.closerange(5, 1 << 16)
    else:
        os.dup2(result_fd, 3)
        os.closerange(4, 1 << 16)
    os.chdir(scratch)
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.address_space_bytes, limits.address_space_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if layers.uid_drop:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    if _call(_libc.prctl, _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 and layers.no_new_privs:
        raise SandboxUnavailable("PR_SET_NO_NEW_PRIVS failed")
    if layers.uid_drop:
        group = uid if gid is None else gid
        os.setgroups([])
        os.setresgid(group, group, group)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid or _can_regain_root():
            raise SandboxUnavailable("uid drop did not hold")
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    return 3


def _can_regain_root() -> bool:
    try:
        os.setuid(0)
    except PermissionError:
        return False
    return True


def sweep_uid(uid: int) -> None:
    """SIGKILL every process running as `uid` (call in a forked helper that then exits).

    kill(-1) walks the whole task list under the tasklist lock, so no process of the uid can fork
    during the walk and none it signalled can fork after; a second pass is belt and braces. (Its
    return value says nothing: it is 0 whenever any other process exists, even without permission.)
    """
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    for _ in range(2):
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            return


def remove_owned(uid: int, dirs: tuple[str, ...] = TMP_DIRS) -> int:
    """Delete top-level entries owned by `uid` in the world-writable dirs; returns how many."""
    removed = 0
    for base in dirs:
        try:
            entries = list(os.scandir(base))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
                removed += 1
            except OSError:
                continue
    return removed


def sandbox_uid(server_pid: int, slot: int) -> int:
    return UID_BASE + server_pid * MAX_SLOTS + slot


def judge_uid(server_pid: int, slot: int) -> int:
    """The isolated judge of a slot runs as a uid of its own, apart from the slot's program uid."""
    return sandbox_uid(server_pid, slot + JUDGE_UID_OFFSET)
