"""How a grading run is confined: limits, Linux namespaces, the new root, cgroups, the environment.

Everything here runs in the grader (the parent) or in the shell that builds the child's world; no
submission code runs in this module. :mod:`course_utils.grading.sandbox` starts the run with it and
:mod:`course_utils.grading.child` is what runs inside.

The child gets, where Linux allows (``unshare``; the grader refuses to run without it unless told):

* its own PID, mount, network, **IPC** and **UTS** namespaces: no network interface, no SysV or POSIX
  IPC object shared with the host or with another learner (they die with the run), its own hostname;
* a **new root** built from a whitelist: the system folders, Python, the virtual environment and the
  package, read-only; a **size-capped tmpfs** as its scratch folder (the notebook is copied in, and it
  disappears with the run: nothing a submission writes reaches the host's disk); private ``/tmp`` and
  ``/dev/shm``; read-only ``/proc/sys``; no ``/sys``;
* uid 65534 with every capability dropped and ``no_new_privs``;
* a **cgroup** of its own (memory, process count, CPU) where the host lets the grader create one
  (cgroup v2 with those controllers, else the v1 hierarchies), plus per-process ``setrlimit`` caps.
  The run's record says which limits were enforced.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from course_utils.errors import ConfigError

try:  # imported here, not in the pre-exec hook: importing between fork and exec can deadlock
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None

SANDBOX_UID = 65534  # "nobody" when the grader runs as root
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
NAMESPACE_FLAGS = ["--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--mount-proc"]
GRADER_DIR = "/grader"  # inside the new root: read-only, empty Jupyter data and config folders
CGROUP_ROOTS = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Limits:
    """Resource caps for one notebook. ``None`` leaves a cap off (the timeout is always on).

    ``memory_mb`` and ``max_processes`` hold for the whole run (its cgroup) where the host allows,
    and per process (``setrlimit``) always; ``scratch_mb`` caps what the run can write.
    """

    timeout: float = 300.0
    memory_mb: int | None = 8192
    file_size_mb: int | None = 512
    cpu_seconds: int | None = None  # default: timeout x number of cores, a backstop behind the timeout
    max_processes: int | None = 512  # threads count too
    scratch_mb: int = 1024
    cpus: float | None = None  # CPU time per wall second for the run's cgroup; None: every core

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {self.timeout}.")
        for name in ("memory_mb", "file_size_mb", "cpu_seconds", "max_processes", "scratch_mb"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1 or None, got {value}.")
        if self.cpus is not None and not self.cpus > 0:
            raise ConfigError(f"cpus must be a positive number, got {self.cpus}.")

    def effective_cpu_seconds(self) -> int:
        return int(self.cpu_seconds or self.timeout * max(1, os.cpu_count() or 1) + 30)


# --------------------------------------------------------------------------------------------
# Interpreters: isolated from the working directory and the environment
# --------------------------------------------------------------------------------------------

_BOOT = ("import runpy, sys; sys.path.insert(0, sys.argv[1]); del sys.argv[:2]; "
         "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


def package_root() -> Path:
    import course_utils

    return Path(course_utils.__file__).resolve().parent.parent


def python_command(module: str, *args: str) -> list[str]:
    """``python -I`` running ``module``: no working directory, ``PYTHON*`` variable or user site on the path.

    The one folder put on ``sys.path`` is the package's root, which the child sees read-only, so no
    file a submission writes can stand in for a module the grader imports.
    """
    return [sys.executable, "-I", "-c", _BOOT, str(package_root()), module, *args]


def exposed_paths() -> list[Path]:
    """What the child sees read-only besides the system folders: Python, the venv, the package."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), package_root() / "course_utils"}
    paths.add(Path(sys.executable).resolve().parent.parent)
    return sorted(paths)


def child_env(workdir: Path, extra: dict[str, str], artefacts_env: str) -> dict[str, str]:
    """A small, explicit environment: nothing of the parent's (tokens, spec paths) leaks by accident."""
    keep = ("LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "COURSE_PROFILE", "COURSE_DEVICE", "COURSE_TORCH_THREADS", "VIRTUAL_ENV", "CUDA_VISIBLE_DEVICES")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + "/usr/local/bin:/usr/bin:/bin"
    env["PYTHONPATH"] = str(package_root())  # for the kernel (learner code); the grader's own use -I
    for name, sub in (("HOME", "home"), ("TMPDIR", "tmp"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                      ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "mpl"), ("HF_HOME", "hf"),
                      ("XDG_CACHE_HOME", "cache"), (artefacts_env, "artefacts")):
        env[name] = str(workdir / sub)
    env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
                "PYDEVD_DISABLE_FILE_VALIDATION": "1", "JUPYTER_PLATFORM_DIRS": "1",
                # kernel specs and Jupyter configuration from read-only folders only
                "JUPYTER_DATA_DIR": f"{GRADER_DIR}/data", "JUPYTER_CONFIG_DIR": f"{GRADER_DIR}/config"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


SCRATCH_FOLDERS = ("home", "tmp", "runtime", "ipython", "mpl", "hf", "cache", "artefacts")


# --------------------------------------------------------------------------------------------
# Namespaces and the new root
# --------------------------------------------------------------------------------------------

_PROBE_CACHE: dict[str, list[str] | None] = {}


def namespace_command() -> list[str] | None:
    """The ``unshare`` prefix that works on this machine, or ``None`` (probed once per process).

    As root the namespaces need no user namespace; otherwise an unprivileged user namespace maps the
    caller to root inside it, which is what allows the mounts. The probe runs the same steps a real
    run uses, with ``true`` as the child.
    """
    if "cmd" in _PROBE_CACHE:
        return _PROBE_CACHE["cmd"]
    found = None
    tools = ("unshare", "setpriv", "mount", "umount", "pivot_root")
    if sys.platform.startswith("linux") and all(shutil.which(t) for t in tools):
        candidates = [["unshare", "--user", "--map-root-user"]]
        if os.geteuid() == 0:
            candidates.insert(0, ["unshare"])
        with tempfile.TemporaryDirectory(prefix="cg-probe-") as tmp:
            notebook = Path(tmp) / "nb.ipynb"
            notebook.write_text("{}")
            for prefix in candidates:
                root = Path(tmp) / f"root{len(prefix)}"
                root.mkdir()
                script = setup_script(root, Path(tmp) / "w", notebook, ["/usr/bin/true"], prefix == ["unshare"], 16)
                try:
                    probe = subprocess.run(prefix + NAMESPACE_FLAGS + ["sh", "-c", script], capture_output=True, timeout=30)
                except (OSError, subprocess.TimeoutExpired):
                    continue
                if probe.returncode == 0:
                    found = prefix + NAMESPACE_FLAGS
                    break
                _PROBE_CACHE["why"] = probe.stderr.decode("utf-8", "replace")[-300:]
    _PROBE_CACHE["cmd"] = found
    return found


def setup_script(root: Path, workdir: Path, notebook: Path, child_argv: list[str], as_root: bool, scratch_mb: int) -> str:
    """The shell run inside the new namespaces: build the new root, pivot into it, drop privileges, exec.

    The scratch folder is a tmpfs of ``scratch_mb`` at ``workdir`` inside the new root, holding a copy
    of ``notebook``; the child starts in ``/`` (read-only), never in a folder the submission can write.
    """
    q = shlex.quote
    r = str(root)
    w = q(r + str(workdir))
    pivot = shutil.which("pivot_root") or "pivot_root"
    tool_dirs = sorted({str(Path(shutil.which(t) or "/usr/bin/x").parent) for t in ("mount", "pivot_root", "unshare")})
    lines = ["set -e", f"PATH={q(os.pathsep.join(tool_dirs))}:/usr/bin:/bin", "mount --make-rprivate /",
             f"mount -t tmpfs -o size=4m,mode=0755 cgroot {q(r)}", "hostname grader 2>/dev/null || true"]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            lines.append(f"ln -s {q(os.readlink(d))} {q(r + d)}")
        elif os.path.isdir(d):
            lines += [f"mkdir -p {q(r + d)}", f"mount --rbind {q(d)} {q(r + d)}", f"mount -o remount,bind,ro {q(r + d)}"]
    # The private /tmp first: a course or venv installed under /tmp is then bound on top of it, not hidden by it.
    lines += [f"mkdir -p {q(r)}/tmp {q(r)}/var/tmp {q(r)}/dev/shm {q(r)}/proc {q(r)}/.old "
              f"{q(r + GRADER_DIR)}/data {q(r + GRADER_DIR)}/config",
              f"mount -t tmpfs -o size=512m,mode=1777 cgtmp {q(r)}/tmp",
              f"mount -t tmpfs -o size=64m,mode=1777 cgshm {q(r)}/dev/shm"]
    for keep in exposed_paths():
        k = str(keep)
        if any(k == d or k.startswith(d + "/") for d in SYSTEM_DIRS):
            continue
        lines += [f"mkdir -p {q(r + k)}", f"mount --rbind {q(k)} {q(r + k)}", f"mount -o remount,bind,ro {q(r + k)}"]
    owner = f",uid={SANDBOX_UID},gid={SANDBOX_UID}" if as_root else ""
    lines += [f"mkdir -p {w}", f"mount -t tmpfs -o size={int(scratch_mb)}m,mode=0700{owner} cgscratch {w}",
              f"cp {q(str(notebook))} {w}/notebook.ipynb",
              "mkdir -p " + " ".join(f"{w}/{sub}" for sub in SCRATCH_FOLDERS)]
    if as_root:
        lines.append(f"chown -R {SANDBOX_UID}:{SANDBOX_UID} {w}")
    for dev in ("null", "zero", "random", "urandom", "full"):
        lines += [f"touch {q(r)}/dev/{dev}", f"mount --bind /dev/{dev} {q(r)}/dev/{dev}"]
    lines += [f"ln -s /proc/self/fd {q(r)}/dev/fd",
              f"mount --rbind /proc {q(r)}/proc",
              f"mount --bind {q(r)}/proc/sys {q(r)}/proc/sys", f"mount -o remount,bind,ro {q(r)}/proc/sys",
              f"cd {q(r)}", f"{q(pivot)} . .old", "cd /", "umount -l /.old", "rmdir /.old",
              "mount -o remount,bind,ro /", "cd /"]
    drop = "/usr/bin/setpriv --bounding-set=-all --inh-caps=-all --no-new-privs"
    argv = " ".join(q(a) for a in child_argv)
    if as_root:  # real root: become uid 65534 outright
        lines.append(f"exec /usr/bin/setpriv --reuid={SANDBOX_UID} --regid={SANDBOX_UID} --clear-groups "
                     f"--bounding-set=-all --inh-caps=-all --no-new-privs -- {argv}")
    else:  # root only inside our user namespace: a nested one maps us to a non-root uid
        lines.append(f"exec /usr/bin/unshare --user --map-user={SANDBOX_UID} --map-group={SANDBOX_UID} -- {drop} -- {argv}")
    return "\n".join(lines)


def unisolated_workdir(workdir: Path, notebook: Path) -> None:
    """The fallback's scratch: a host folder (no namespaces, so no tmpfs of our own)."""
    workdir.mkdir()
    shutil.copyfile(notebook, workdir / "notebook.ipynb")
    for sub in SCRATCH_FOLDERS:
        (workdir / sub).mkdir()


def namespace_ids() -> dict[str, str]:
    """The grader's own namespaces, for the child to prove it is in others."""
    out = {}
    for kind in ("ipc", "uts", "net", "pid", "mnt"):
        try:
            out[kind] = os.readlink(f"/proc/self/ns/{kind}")
        except OSError:
            pass
    return out


# --------------------------------------------------------------------------------------------
# Per-process limits and the run's cgroup
# --------------------------------------------------------------------------------------------


def preexec(limits: Limits, cgroup_procs: list[str]):
    """Runs in the child between fork and exec: join the run's cgroups, then caps every descendant inherits."""

    def apply() -> None:
        pid = str(os.getpid()).encode()
        for procs in cgroup_procs:
            try:
                fd = os.open(procs, os.O_WRONLY)
                try:
                    os.write(fd, pid)
                finally:
                    os.close(fd)
            except OSError:
                pass
        if resource is None:
            return

        def cap(which: int, value: int) -> None:
            try:
                _, hard = resource.getrlimit(which)
                if hard != resource.RLIM_INFINITY:
                    value = min(value, hard)
                resource.setrlimit(which, (value, value))
            except (ValueError, OSError):
                pass

        if limits.memory_mb:
            cap(resource.RLIMIT_AS, limits.memory_mb * 2**20)
        if limits.file_size_mb:
            cap(resource.RLIMIT_FSIZE, limits.file_size_mb * 2**20)
        if limits.max_processes:
            cap(resource.RLIMIT_NPROC, limits.max_processes)
        cap(resource.RLIMIT_CPU, limits.effective_cpu_seconds())
        cap(resource.RLIMIT_CORE, 0)

    return apply


@dataclass
class RunCgroup:
    """The cgroup(s) of one run: created before it starts, emptied and removed after it ends."""

    folders: list[Path] = field(default_factory=list)
    enforced: dict[str, str] = field(default_factory=dict)  # limit -> "v2" / "v1"
    why_not: str = ""

    @property
    def procs_files(self) -> list[str]:
        return [str(f / "cgroup.procs") for f in self.folders]

    @classmethod
    def create(cls, limits: Limits, name: str) -> RunCgroup:
        group = cls()
        try:
            group._create(limits, name)
        except OSError as exc:
            group.remove()
            group.folders, group.enforced = [], {}
            group.why_not = f"cgroups not writable here ({exc.strerror or exc})"
        if not group.enforced and not group.why_not:
            group.why_not = "no writable cgroup with memory, pids or cpu controllers"
        return group

    def _create(self, limits: Limits, name: str) -> None:
        memory = limits.memory_mb * 2**20 if limits.memory_mb else None
        cpus = limits.cpus or float(os.cpu_count() or 1)
        v2 = _v2_root()
        if v2 is not None:
            controllers = (v2 / "cgroup.controllers").read_text().split()
            if {"memory", "pids"} <= set(controllers):
                folder = v2 / name
                folder.mkdir()
                self.folders.append(folder)
                if memory:
                    (folder / "memory.max").write_text(str(memory))
                    (folder / "memory.swap.max").write_text("0") if (folder / "memory.swap.max").exists() else None
                    self.enforced["memory"] = "v2"
                if limits.max_processes:
                    (folder / "pids.max").write_text(str(limits.max_processes))
                    self.enforced["processes"] = "v2"
                if "cpu" in controllers:
                    (folder / "cpu.max").write_text(f"{int(cpus * 100000)} 100000")
                    self.enforced["cpu"] = "v2"
                return
        for controller, limit_name in (("memory", "memory"), ("pids", "processes"), ("cpu", "cpu")):
            parent = _v1_parent(controller)
            if parent is None:
                continue
            folder = parent / name
            folder.mkdir()
            self.folders.append(folder)
            if controller == "memory" and memory:
                (folder / "memory.limit_in_bytes").write_text(str(memory))
            elif controller == "pids" and limits.max_processes:
                (folder / "pids.max").write_text(str(limits.max_processes))
            elif controller == "cpu":
                (folder / "cpu.cfs_period_us").write_text("100000")
                (folder / "cpu.cfs_quota_us").write_text(str(int(cpus * 100000)))
            else:
                continue
            self.enforced[limit_name] = "v1"

    def memory_peak_mb(self) -> float | None:
        for folder in self.folders:
            for name in ("memory.max_usage_in_bytes", "memory.peak"):
                try:
                    return int((folder / name).read_text()) / 2**20
                except (OSError, ValueError):
                    continue
        return None

    def memory_limit_hit(self) -> bool:
        for folder in self.folders:
            try:
                if (folder / "memory.failcnt").exists():
                    return int((folder / "memory.failcnt").read_text()) > 0
                events = (folder / "memory.events").read_text()
                return any(line.split()[0] in ("oom_kill", "max") and int(line.split()[1]) > 0 for line in events.splitlines())
            except (OSError, ValueError, IndexError):
                continue
        return False

    def remove(self) -> None:
        """Kill whatever is left in the run's cgroups, then remove them (nothing stays on the host)."""
        import signal

        for folder in self.folders:
            for _ in range(50):
                try:
                    pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
                except (OSError, ValueError):
                    pids = []
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _v2_root() -> Path | None:
    for candidate in (CGROUP_ROOTS, CGROUP_ROOTS / "unified"):
        if (candidate / "cgroup.controllers").is_file() and (candidate / "cgroup.procs").is_file():
            own = _own_cgroup("")
            base = candidate / own.lstrip("/") if own is not None else candidate
            return base if (base / "cgroup.controllers").is_file() else candidate
    return None


def _own_cgroup(controller: str) -> str | None:
    """This process's path in a hierarchy (``""``: the v2 one), from /proc/self/cgroup."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if names.split(",") == [controller] or (controller == "" and names == ""):
                return path
            if controller and controller in names.split(","):
                return path
    except (OSError, ValueError):
        pass
    return None


def _v1_parent(controller: str) -> Path | None:
    mount = CGROUP_ROOTS / controller
    own = _own_cgroup(controller)
    if own is None or not (mount / "cgroup.procs").is_file():
        return None
    parent = mount / own.lstrip("/")
    return parent if os.access(parent, os.W_OK) else None
