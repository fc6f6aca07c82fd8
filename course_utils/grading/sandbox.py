"""Run one untrusted notebook in a confined child and bring back only what the grader asked for.

The grader assumes a submission is hostile: it may loop forever, eat memory, crash or patch its
kernel, print fake results, go looking for the instructor's expected answers, or try to reach the
host and other learners. So the parent process (which holds the spec) never executes submission
code. For each notebook it starts a child:

* in its own process group and, where Linux allows (``unshare``), its own PID, mount and network
  namespaces: no network interface; a **new root file system** built from a whitelist (the system
  directories ``/usr /bin /lib* /etc``, the Python installation, the virtual environment and the
  ``course_utils`` package, all read-only; the one notebook's private scratch folder; private
  ``/tmp`` and ``/dev/shm``; a read-only ``/proc/sys``; no ``/sys``). The course checkout, its
  ``.git``, ``$HOME``, the spec and other submissions are simply not in that tree;
* under a non-root uid (65534 when the grader is root; a nested user namespace otherwise) with
  every capability dropped and ``no_new_privs``, so nothing of the above can be undone;
* under ``setrlimit`` caps on address space, CPU seconds, file size and process count.

Inside, the child (``_child_main``):

1. measures the isolation: network interfaces, write probes, and a **canary** search: the parent
   hands it the SHA-256 of the spec's canary string, and the child looks for any string of the
   canary's form in every file it can read outside the read-only library trees (and in any
   ``.git`` folder it finds). The report's isolation record is this measurement, not the mounts;
2. calls **function answers** in a fresh interpreter per question (``python -I``-like, its own
   process), from the function's *source* extracted statically from the notebook file (top-level
   imports, functions and classes), on inputs the parent drew at random for this run. No kernel
   exists yet at that point, and a function's process can only speak for that one question;
3. executes the notebook with nbclient (``allow_errors``), with ``COURSE_GRADER_ARTEFACTS`` pointing
   at a scratch folder where :func:`course_utils.grading.submit.submit_model` saves artefacts;
4. collects **value answers** through the kernel's ``user_expressions`` in the reply to one request
   (not from printed output, which a hook can forge): a value answer is, by its nature, what the
   notebook states, and it is scored against an exact expected value only;
5. shuts the kernel down, then loads each **artefact** (a pickled fitted model) in a fresh
   interpreter and asks it to predict on inputs the parent supplied; the labels never leave the
   parent, which scores the predictions.

The result goes back on a pipe only the child holds (the kernel and the fresh interpreters do not
inherit it; the child is not dumpable, so they cannot open it through ``/proc``). The parent waits
for every process of the run to be gone before it scores anything.

Without namespaces the run gets the process group, the limits and the timeout only; the grader
refuses that mode unless the instructor passes ``--allow-unisolated`` (recorded in the report).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from course_utils.errors import ConfigError

try:  # imported here, not in the pre-exec hook: importing between fork and exec can deadlock
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None

MAX_RESULT_BYTES = 64 * 2**20
_TIMEOUT_ENAME = "CourseGraderCellTimeout"
CANARY_PATTERN = re.compile(rb"cg-canary-[0-9a-f]{32}")
SANDBOX_UID = 65534  # "nobody" when the grader runs as root
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
from course_utils.grading.submit import ARTEFACTS_ENV  # noqa: E402


# --------------------------------------------------------------------------------------------
# Limits and isolation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Resource caps for one notebook. ``None`` leaves a cap off (the timeout is always on)."""

    timeout: float = 300.0
    memory_mb: int | None = 8192
    file_size_mb: int | None = 512
    cpu_seconds: int | None = None  # default: timeout x number of cores, a backstop behind the timeout
    max_processes: int | None = 512  # threads count too (RLIMIT_NPROC)

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {self.timeout}.")
        for name in ("memory_mb", "file_size_mb", "cpu_seconds", "max_processes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1 or None, got {value}.")

    def effective_cpu_seconds(self) -> int:
        return int(self.cpu_seconds or self.timeout * max(1, os.cpu_count() or 1) + 30)


@dataclass
class Isolation:
    """How the child was confined, as measured from inside it."""

    method: str = "process group"
    network_isolated: bool = False
    spec_hidden: bool = False  # proven by the canary search, not assumed from the mounts
    filesystem_read_only: bool = False
    proc_sys_read_only: bool = False
    non_root: bool = False
    private_tmp: bool = False
    files_scanned: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [self.method, "no network" if self.network_isolated else "NETWORK OPEN",
                 "canary not found" if self.spec_hidden else "SPEC READABLE",
                 "read-only files" if self.filesystem_read_only else "FILES WRITABLE",
                 "non-root" if self.non_root else "ROOT"]
        return ", ".join(parts)


_PROBE_CACHE: dict[str, list[str] | None] = {}


def namespace_command() -> list[str] | None:
    """The ``unshare`` prefix that works on this machine, or ``None`` (probed once per process).

    As root the mount/net/PID namespaces need no user namespace; otherwise an unprivileged user
    namespace maps the caller to root inside it, which is what allows the mounts. The probe runs the
    same steps the real setup needs: a tmpfs, a bind mount, pivot_root and dropping every capability.
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
            work, root = Path(tmp) / "w", Path(tmp) / "root"
            work.mkdir()
            root.mkdir()
            for prefix in candidates:  # the very setup a real run uses, with `true` as the child
                cmd = prefix + ["--mount", "--net", "--pid", "--fork", "--mount-proc"]
                as_root = prefix == ["unshare"]
                if as_root:
                    os.chown(work, SANDBOX_UID, SANDBOX_UID)
                script = _setup_script(root, work, ["/usr/bin/true"], as_root)
                try:
                    probe = subprocess.run(cmd + ["sh", "-c", script], capture_output=True, timeout=30)
                except (OSError, subprocess.TimeoutExpired):
                    continue
                if probe.returncode == 0:
                    found = cmd
                    break
                _PROBE_CACHE["why"] = probe.stderr.decode("utf-8", "replace")[-300:]
    _PROBE_CACHE["cmd"] = found
    return found


def exposed_paths() -> list[Path]:
    """What the child sees read-only besides the system folders: Python, the venv, the package."""
    import course_utils

    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(course_utils.__file__).resolve().parent}
    paths.add(Path(sys.executable).resolve().parent.parent)
    return sorted(paths)


def _setup_script(root: Path, workdir: Path, child_argv: Sequence[str], as_root: bool) -> str:
    """The shell run inside the new namespaces: build the new root, pivot into it, drop privileges, exec."""
    q = shlex.quote
    r = str(root)
    pivot = shutil.which("pivot_root") or "pivot_root"
    lines = ["set -e", f"PATH={q(os.pathsep.join(sorted({str(Path(shutil.which(t) or '/usr/bin/x').parent) for t in ('mount', 'pivot_root', 'unshare')})))}:/usr/bin:/bin", "mount --make-rprivate /", f"mount -t tmpfs -o size=4m,mode=0755 cgroot {q(r)}"]
    for d in _SYSTEM_DIRS:
        if os.path.islink(d):
            lines.append(f"ln -s {q(os.readlink(d))} {q(r + d)}")
        elif os.path.isdir(d):
            lines += [f"mkdir -p {q(r + d)}", f"mount --rbind {q(d)} {q(r + d)}",
                      f"mount -o remount,bind,ro {q(r + d)}"]
    # The private /tmp first: a course or venv installed under /tmp is then bound on top of it, not hidden by it.
    lines += [f"mkdir -p {q(r)}/tmp {q(r)}/var/tmp {q(r)}/dev/shm {q(r)}/proc {q(r)}/.old",
              f"mount -t tmpfs -o size=512m,mode=1777 cgtmp {q(r)}/tmp",
              f"mount -t tmpfs -o size=64m,mode=1777 cgshm {q(r)}/dev/shm"]
    for keep in exposed_paths():
        if any(str(keep) == d or str(keep).startswith(d + "/") for d in _SYSTEM_DIRS):
            continue
        k = str(keep)
        lines += [f"mkdir -p {q(r + k)}", f"mount --rbind {q(k)} {q(r + k)}", f"mount -o remount,bind,ro {q(r + k)}"]
    lines += [f"mkdir -p {q(r + str(workdir))}", f"mount --bind {q(str(workdir))} {q(r + str(workdir))}"]
    for dev in ("null", "zero", "random", "urandom", "full"):
        lines += [f"touch {q(r)}/dev/{dev}", f"mount --bind /dev/{dev} {q(r)}/dev/{dev}"]
    lines += [f"ln -s /proc/self/fd {q(r)}/dev/fd",
              f"mount --rbind /proc {q(r)}/proc",
              f"mount --bind {q(r)}/proc/sys {q(r)}/proc/sys", f"mount -o remount,bind,ro {q(r)}/proc/sys",
              f"cd {q(r)}", f"{q(pivot)} . .old", "cd /", "umount -l /.old", "rmdir /.old",
              "mount -o remount,bind,ro /", f"cd {q(str(workdir))}"]
    drop = "/usr/bin/setpriv --bounding-set=-all --inh-caps=-all --no-new-privs"
    if as_root:  # real root: become uid 65534 outright
        drop = (f"/usr/bin/setpriv --reuid={SANDBOX_UID} --regid={SANDBOX_UID} --clear-groups "
                "--bounding-set=-all --inh-caps=-all --no-new-privs")
        lines.append(f"exec {drop} -- " + " ".join(q(a) for a in child_argv))
    else:  # root only inside our user namespace: a nested one maps us to a non-root uid
        lines.append(f"exec /usr/bin/unshare --user --map-user={SANDBOX_UID} --map-group={SANDBOX_UID} -- "
                     f"{drop} -- " + " ".join(q(a) for a in child_argv))
    return "\n".join(lines)


def _preexec(limits: Limits):
    """Runs in the child between fork and exec: resource caps that every descendant inherits."""

    def apply() -> None:
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


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------


@dataclass
class Job:
    """What the parent asks of one notebook. Travels to the child on its stdin, never on argv.

    ``values``: question id -> variable name (collected from the kernel).
    ``functions``: question id -> {"name": function name, "cases": [[arg, ...], ...]}.
    ``artefacts``: question id -> {"method": "predict" | "predict_proba" | "predict_texts", "inputs": [...]}.
    ``env``: extra environment for the kernel (the learner's variant seed).
    """

    values: dict[str, str] = field(default_factory=dict)
    functions: dict[str, dict] = field(default_factory=dict)
    artefacts: dict[str, dict] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    canary_sha256: str = ""


@dataclass
class RunResult:
    """What came back from one notebook and what happened on the way."""

    status: str  # "ok" (ran to the end), "error" (crashed), "timeout" (killed or cells cut short)
    detail: str
    values: dict[str, dict]
    seconds: float
    isolation: Isolation
    cell_errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["isolation"] = asdict(self.isolation)
        return out


def _child_env(workdir: Path, extra: dict[str, str]) -> dict[str, str]:
    """A small, explicit environment: nothing of the parent's (tokens, spec paths) leaks by accident."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "COURSE_PROFILE", "COURSE_DEVICE", "VIRTUAL_ENV", "PYTHONPATH", "CUDA_VISIBLE_DEVICES")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    import course_utils

    package_root = str(Path(course_utils.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_root  # only this path of the parent's is visible in the child anyway
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + "/usr/local/bin:/usr/bin:/bin"
    for name, sub in (("HOME", "home"), ("TMPDIR", "tmp"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                      ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "mpl"), ("HF_HOME", "hf"),
                      ("XDG_CACHE_HOME", "cache"), (ARTEFACTS_ENV, "artefacts")):
        (workdir / sub).mkdir(exist_ok=True)
        env[name] = str(workdir / sub)
    env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
                "PYDEVD_DISABLE_FILE_VALIDATION": "1", "JUPYTER_PLATFORM_DIRS": "1"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _parse_messages(payload: bytes) -> dict:
    """The child's JSON lines ({"isolation"}, {"kernel_pgid"}, {"result"}) merged into one dict."""
    merged: dict = {}
    for line in payload.split(b"\n")[:8]:
        try:
            message = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(message, dict):
            merged.update({k: v for k, v in message.items() if k in ("isolation", "kernel_pgid", "result")})
    return merged


def _kill_everything(proc: subprocess.Popen, workdir: Path, kernel_pgid, namespaced: bool) -> None:
    """Kill the child's process group; outside a PID namespace also the kernel's own group.

    Inside a PID namespace every process dies with the namespace's first one. Outside (the
    ``--allow-unisolated`` fallback) a process that left both groups survives: that is one of the
    reasons the fallback is refused by default.
    """
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if namespaced or not isinstance(kernel_pgid, int) or isinstance(kernel_pgid, bool) or kernel_pgid <= 1:
        return
    cmdline = Path(f"/proc/{kernel_pgid}/cmdline")
    try:
        if Path("/proc/self").exists() and (not cmdline.exists() or str(workdir).encode() not in cmdline.read_bytes()):
            return
        os.killpg(kernel_pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def run_notebook(
    notebook: str | os.PathLike,
    job: Job,
    limits: Limits | None = None,
    use_namespaces: bool | None = None,
) -> RunResult:
    """Execute ``notebook`` in a confined child and return what ``job`` asked for.

    ``use_namespaces=None`` uses them when this machine allows; ``False`` forces the (unisolated)
    fallback, ``True`` raises :class:`ConfigError` where they are not available.
    """
    limits = limits or Limits()
    if os.name != "posix":
        raise ConfigError("grading runs submissions in confined POSIX processes; use Linux, macOS or WSL.")
    started = time.monotonic()
    prefix = namespace_command() if use_namespaces in (None, True) else None
    if use_namespaces and prefix is None:
        raise ConfigError("Linux namespaces (unshare, setpriv, pivot_root) are not available here.")
    as_root = bool(prefix) and "--user" not in prefix  # real root: no user namespace, uid 65534 outright
    with tempfile.TemporaryDirectory(prefix="cg-", ignore_cleanup_errors=True) as tmp:
        base = Path(tmp).resolve()
        workdir, root = base / "w", base / "root"
        workdir.mkdir()
        root.mkdir()
        target = workdir / "notebook.ipynb"
        shutil.copyfile(notebook, target)
        env = _child_env(workdir, job.env)
        read_fd, write_fd = os.pipe()
        # time kept after the cells for collecting the answers, and for models to predict (BERT: ~15-30 s)
        reserve = max(8.0, min(30.0, 0.25 * limits.timeout)) + (min(90.0, 0.3 * limits.timeout) if job.artefacts else 0.0)
        child_argv = [sys.executable, "-m", "course_utils.grading.sandbox", "--notebook", str(target),
                      "--workdir", str(workdir), "--result-fd", str(write_fd),
                      # CLOCK_MONOTONIC is shared by all processes, so both deadlines are absolute
                      "--cells-deadline", repr(started + max(1.0, limits.timeout - reserve)),
                      "--collect-deadline", repr(started + limits.timeout - 2.0)]
        if prefix:
            if as_root:
                for path in [workdir, *workdir.rglob("*")]:
                    os.chown(path, SANDBOX_UID, SANDBOX_UID)
            command = prefix + ["sh", "-c", _setup_script(root, workdir, child_argv, as_root)]
        else:
            command = child_argv
        log = open(base / "child.log", "wb")  # outside the workdir: the child cannot write it by path
        try:
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                    env=env, cwd=workdir, pass_fds=(write_fd,),
                                    start_new_session=True, preexec_fn=_preexec(limits))
        finally:
            os.close(write_fd)
            log.close()
        try:
            proc.stdin.write(json.dumps(asdict(job)).encode("utf-8"))
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        payload, killed = _read_until(read_fd, proc, started + limits.timeout)
        messages = _parse_messages(payload)
        _kill_everything(proc, workdir, messages.get("kernel_pgid"), bool(prefix))
        proc.wait()
        elapsed = time.monotonic() - started
        tail = (base / "child.log").read_bytes()[-2000:].decode("utf-8", "replace")
    return _result_from(messages, killed, elapsed, tail, limits, bool(prefix))


def _read_until(fd: int, proc: subprocess.Popen, deadline: float) -> tuple[bytes, bool]:
    """Read the child's result until EOF or the deadline; True means the deadline killed it."""
    import selectors

    chunks, size = [], 0
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b"".join(chunks), True
                if not sel.select(timeout=min(remaining, 1.0)):
                    continue
                data = os.read(fd, 65536)
                if not data:
                    return b"".join(chunks), False
                size += len(data)
                if size <= MAX_RESULT_BYTES:
                    chunks.append(data)
        finally:
            os.close(fd)


def _result_from(messages: dict, killed: bool, elapsed: float, log_tail: str, limits: Limits, namespaced: bool) -> RunResult:
    probe = messages.get("isolation")
    data = messages.get("result") if isinstance(messages.get("result"), dict) else None
    isolation = Isolation(method="namespaces + new root" if namespaced else "UNISOLATED: process group + resource limits")
    if isinstance(probe, dict):
        for key in ("network_isolated", "spec_hidden", "filesystem_read_only", "proc_sys_read_only", "non_root",
                    "private_tmp"):
            setattr(isolation, key, probe.get(key) is True)
        isolation.files_scanned = int(probe.get("files_scanned", 0)) if is_int(probe.get("files_scanned")) else 0
        isolation.notes = [str(n)[:200] for n in probe.get("notes", [])][:10]
    if killed:
        values = data.get("values", {}) if data else {}
        return RunResult("timeout", f"killed after the {limits.timeout:g} s time limit", values, elapsed, isolation,
                         list(data.get("cell_errors", [])) if data else [])
    if data is None:
        last = log_tail.strip().splitlines()[-1:] or ["no output"]
        return RunResult("error", f"the grading child exited without a result: {last[0][:300]}", {}, elapsed, isolation)
    status = data.get("status") if data.get("status") in ("ok", "error", "timeout") else "error"
    values = data.get("values") if isinstance(data.get("values"), dict) else {}
    return RunResult(status, str(data.get("detail", ""))[:500], values, elapsed, isolation,
                     [str(e)[:300] for e in data.get("cell_errors", [])][:20])


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# Child side: executed as `python -m course_utils.grading.sandbox ...` inside the confinement
# --------------------------------------------------------------------------------------------

# Defined in the submission's kernel (standard library only): converts a value to plain JSON
# types and returns an object whose repr is that JSON, for the reply's user_expressions.
_COLLECTOR = r'''
def __course_grader_collect(name):
    import json, math
    class _Raw:
        def __init__(self, text): self.text = text
        def __repr__(self): return self.text
    def plain(v, depth=0):
        if depth > 6:
            return {"__unsupported__": "nested too deeply"}
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str):
            return v[:20000]
        if isinstance(v, int):
            return v if abs(v) < 2 ** 63 else float(v)
        if isinstance(v, float):
            return v if math.isfinite(v) else {"__float__": repr(v)}
        if isinstance(v, dict) or (hasattr(v, "items") and hasattr(v, "keys") and not hasattr(v, "to_dict")):
            return {str(k): plain(x, depth + 1) for k, x in list(v.items())[:1000]}
        if isinstance(v, (set, frozenset)):
            return sorted((plain(x, depth + 1) for x in list(v)[:1000]), key=repr)
        if isinstance(v, (list, tuple)):
            return [plain(x, depth + 1) for x in v[:10000]]
        if getattr(v, "shape", None) == () and hasattr(v, "item"):
            return plain(v.item(), depth + 1)
        if hasattr(v, "to_dict") and hasattr(v, "columns"):
            return plain(v.to_dict(orient="list"), depth + 1)
        if hasattr(v, "tolist"):
            return plain(v.tolist(), depth + 1)
        return {"__unsupported__": type(v).__name__}
    space = globals()
    if name not in space:
        out = {"ok": False, "error": "NameError: " + name + " is not defined"}
    else:
        try:
            out = {"ok": True, "value": plain(space[name])}
        except BaseException as exc:
            out = {"ok": False, "error": (type(exc).__name__ + ": " + str(exc))[:300]}
    return _Raw(json.dumps(out, allow_nan=False))
'''

# Runs in a fresh interpreter per function answer: the learner's top-level definitions, then the
# grader's cases. Reads {"source", "name", "cases"} on stdin; writes one JSON line on fd 3's dup.
_FUNCTION_RUNNER = r'''
import json, math, os, sys
job = json.loads(sys.stdin.read())
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # the learner's prints go to stderr; only the final line below is stdout
def plain(v):
    if hasattr(v, "item") and getattr(v, "shape", None) == ():
        v = v.item()
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(float(v)) else None
    return {"__unsupported__": type(v).__name__}
results = []
try:
    space = {"__name__": "submission"}
    exec(compile(job["source"], "submission", "exec"), space)
    fn = space.get(job["name"])
    if not callable(fn):
        raise NameError(job["name"] + " is not defined as a function")
except BaseException as exc:
    out.write(json.dumps({"ok": False, "error": (type(exc).__name__ + ": " + str(exc))[:300]}) + "\n")
    out.flush()
    os._exit(0)
for case in job["cases"]:
    try:
        results.append({"ok": True, "value": plain(fn(*case))})
    except BaseException as exc:
        results.append({"ok": False, "error": (type(exc).__name__ + ": " + str(exc))[:200]})
out.write(json.dumps({"ok": True, "value": results}) + "\n")
out.flush()
os._exit(0)
'''

# Runs in a fresh interpreter per artefact: unpickle the learner's model (arbitrary code, hence
# here and not in the grader), predict on the grader's inputs, return plain lists.
_ARTEFACT_RUNNER = r'''
import json, math, os, pickle, sys
job = json.loads(sys.stdin.read())
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
try:
    with open(job["path"], "rb") as fh:
        model = pickle.load(fh)
    method = job["method"]
    if method == "predict_texts":
        got = model.predict(job["inputs"])
        got = list(getattr(got, "labels", got))
        values = [str(v) for v in got]
    else:
        import numpy as np
        X = np.asarray(job["inputs"], dtype=float)
        got = np.asarray(getattr(model, method)(X))
        if method == "predict_proba":
            got = got[:, 1]
        values = [float(v) if math.isfinite(float(v)) else None for v in got.ravel().tolist()]
    if len(values) != len(job["inputs"]):
        raise ValueError(f"{len(values)} predictions for {len(job['inputs'])} inputs")
    result = {"ok": True, "value": values, "model": type(model).__name__}
    # What share of its weights the model trains (a LoRA question checks it); torch models only.
    network = getattr(model, "model", model)
    if callable(getattr(network, "parameters", None)):
        try:
            sizes = [(p.numel(), bool(p.requires_grad)) for p in network.parameters()]
            total = sum(n for n, _ in sizes)
            if total:
                result["trainable_share"] = sum(n for n, trains in sizes if trains) / total
        except Exception:
            pass
except BaseException as exc:
    result = {"ok": False, "error": (type(exc).__name__ + ": " + str(exc))[:300]}
out.write(json.dumps(result, allow_nan=False) + "\n")
out.flush()
os._exit(0)
'''


def extract_definitions(nb_path: Path) -> str:
    """The notebook's top-level imports, function and class definitions, as one module's source.

    Assignments of literal constants are kept too. Statements with effects (data loading, training,
    prints, hooks) are left out: a function answer is
    judged by what its definition computes on the grader's inputs, in an interpreter with no state of
    the learner's kernel. Cells that do not parse (magics) are skipped statement by statement.
    """
    import ast

    import nbformat

    nb = nbformat.read(str(nb_path), as_version=4)
    kept: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            constant = isinstance(node, ast.Assign) and _is_literal(node.value)  # e.g. EPS = 1e-12
            if constant or isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                kept.append(ast.get_source_segment(source, node) or "")
    return "\n\n".join(kept)


def _is_literal(node) -> bool:
    import ast

    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _fresh_python(runner: str, job: dict, seconds: float, workdir: Path) -> dict:
    """Run ``runner`` in a new interpreter with ``job`` on stdin; one JSON object back, or an error."""
    try:
        proc = subprocess.run([sys.executable, "-c", runner], input=json.dumps(job).encode(), capture_output=True,
                              timeout=max(1.0, seconds), cwd=workdir, start_new_session=True)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timeout: did not finish in {seconds:.0f} s", "timeout": True}
    lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    if not lines:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        return {"ok": False, "error": f"the interpreter exited without a result ({proc.returncode}): {tail[0][:200]}"}
    try:
        value = json.loads(lines[0])  # the first line: the runner writes exactly one, before any exit
    except json.JSONDecodeError:
        return {"ok": False, "error": "unreadable result"}
    return value if isinstance(value, dict) else {"ok": False, "error": "malformed result"}


def _probe_isolation(workdir: Path, canary_sha256: str) -> dict:
    """Measure the confinement from the inside, so the report states facts rather than hopes."""
    import socket

    notes = []
    try:
        interfaces = [name for _, name in socket.if_nameindex()]
    except OSError:
        interfaces = ["?"]
    network = all(name == "lo" for name in interfaces)
    read_only = not _writable(Path(sys.prefix)) and not _writable(Path("/")) and not _writable(Path("/usr"))
    proc_sys_ro = not _writable_file("/proc/sys/kernel/core_pattern") and not _writable_file("/sys/kernel/uevent_helper")
    skip_trees = [str(p) for p in exposed_paths()] + list(_SYSTEM_DIRS) + ["/proc", "/dev/fd"]
    found, scanned = _canary_search(canary_sha256, skip_trees, workdir)
    if found:
        notes.append(f"the spec's canary is readable at {found[0]}")
    gits = [p for p in _find_named(".git", skip_trees)]
    if gits:
        notes.append(f"a .git folder is readable at {gits[0]}")
    home = os.path.expanduser("~")
    return {"network_isolated": network, "spec_hidden": not found and bool(canary_sha256) and not gits,
            "filesystem_read_only": read_only, "proc_sys_read_only": proc_sys_ro, "non_root": os.geteuid() != 0,
            "private_tmp": _private_tmp(workdir),
            "files_scanned": scanned, "notes": notes + ([f"HOME is {home}"] if not home.startswith(str(workdir)) else [])}


def _private_tmp(workdir: Path) -> bool:
    """/tmp holds nothing but the way to our own scratch folder (and to Python, where it is installed
    under /tmp, read-only), and /dev/shm nothing at all."""
    try:
        tmp = {p.name for p in Path("/tmp").iterdir()}
        shm = list(Path("/dev/shm").iterdir())
    except OSError:
        return False
    ours = {path.parts[2] for path in (workdir, *exposed_paths()) if len(path.parts) > 2 and path.parts[1] == "tmp"}
    return tmp <= ours and not shm


def _writable(path: Path) -> bool:
    probe = path / f".cg_write_probe_{os.getpid()}"
    try:
        probe.write_text("x")
        probe.unlink()
        return True
    except OSError:
        return False


def _writable_file(path: str) -> bool:
    try:
        with open(path, "r+b"):
            return True
    except OSError:
        return False


def _canary_search(canary_sha256: str, skip: Sequence[str], workdir: Path, max_bytes: int = 4 * 2**20,
                   max_files: int = 50_000) -> tuple[list[str], int]:
    """Every readable file outside the read-only library trees, searched for the canary's form."""
    found, scanned = [], 0
    for dirpath, dirnames, filenames in os.walk("/", onerror=lambda e: None):
        dirnames[:] = [d for d in dirnames if not any(os.path.join(dirpath, d) == s for s in skip)]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if scanned >= max_files:
                return found, scanned
            try:
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                with open(path, "rb") as fh:
                    data = fh.read(max_bytes)
            except OSError:
                continue
            scanned += 1
            for match in CANARY_PATTERN.findall(data):
                if hashlib.sha256(match).hexdigest() == canary_sha256:
                    found.append(path)
                    break
    return found, scanned


def _find_named(name: str, skip: Sequence[str]) -> list[str]:
    hits = []
    for dirpath, dirnames, _ in os.walk("/", onerror=lambda e: None):
        dirnames[:] = [d for d in dirnames if not any(os.path.join(dirpath, d) == s for s in skip)]
        if name in dirnames:
            hits.append(os.path.join(dirpath, name))
    return hits


def _set_not_dumpable() -> None:
    """Stop the kernel (same user) from opening this process's pipe or memory through /proc/<pid>."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:
        pass


def _kernel_death(process) -> str:
    code = None
    if process is not None:
        try:
            code = process.wait(timeout=2)
        except Exception:
            code = process.poll()
    if code is not None and code < 0:
        sig = signal.Signals(-code).name
        why = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (killed: out of memory?)", "SIGSEGV": " (segmentation fault)"}
        return f"the kernel died with {sig}{why.get(sig, '')}"
    return f"the kernel died (exit code {code})" if code is not None else "the kernel died"


def _collect_values(kc, variables: dict[str, str], seconds: float) -> dict[str, dict]:
    """Every value answer in one request's ``user_expressions``, read from that request's own reply.

    ``kc`` is a blocking client whose channels were opened before any cell ran, so a submission that
    exhausts the process cap cannot stop the grader from asking.
    """
    import ast

    if not variables:
        return {}
    try:
        exprs = {qid: f"__course_grader_collect({name!r})" for qid, name in variables.items()}
        reply = kc.execute(_COLLECTOR, silent=True, store_history=False, user_expressions=exprs,
                           reply=True, timeout=max(1.0, seconds))
    except Exception as exc:  # noqa: BLE001 - a kernel that does not answer loses these answers only
        return {qid: {"ok": False, "error": f"no reply from the kernel ({type(exc).__name__})", "timeout": True}
                for qid in variables}
    got = reply.get("content", {}).get("user_expressions", {}) if isinstance(reply, dict) else {}
    values = {}
    for qid in variables:
        item = got.get(qid) if isinstance(got, dict) else None
        try:
            text = item["data"]["text/plain"]
            value = json.loads(text)
        except Exception:  # noqa: BLE001
            try:
                value = json.loads(ast.literal_eval(item["data"]["text/plain"]))
            except Exception:  # noqa: BLE001
                error = item.get("evalue") if isinstance(item, dict) else None
                value = {"ok": False, "error": f"the kernel returned no value for this answer{': ' + str(error)[:200] if error else ''}"}
        values[qid] = value if isinstance(value, dict) else {"ok": False, "error": "malformed value"}
    return values


def _execute(nb_path: Path, workdir: Path, job: dict, deadline: float, collect_deadline: float, report) -> dict:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError
    from traitlets.config import Config

    result: dict = {"status": "ok", "detail": "", "values": {}, "cell_errors": []}
    # 1. function answers, from the notebook's source, before any learner code runs in a kernel
    functions = job.get("functions") or {}
    if functions:
        source = extract_definitions(nb_path)
        for qid, spec in functions.items():
            budget = min(30.0, max(1.0, deadline - time.monotonic()))
            result["values"][qid] = _fresh_python(_FUNCTION_RUNNER, {"source": source, "name": spec["name"],
                                                                     "cases": spec["cases"]}, budget, workdir)
    nb = nbformat.read(str(nb_path), as_version=4)
    config = Config()
    config.KernelManager.transport = "ipc"  # no TCP: works with no network interface at all
    config.KernelManager.ip = str(workdir / "runtime" / "k")
    replies: dict[int, dict] = {}

    def on_executed(cell, cell_index, execute_reply):
        replies[cell_index] = execute_reply.get("content", {}) if execute_reply else {}

    client = NotebookClient(
        nb, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
        error_on_timeout={"ename": _TIMEOUT_ENAME, "evalue": "cell timed out", "traceback": []},
        resources={"metadata": {"path": str(workdir)}}, record_timing=False, config=config,
        iopub_timeout=2, shutdown_kernel="immediate", startup_timeout=max(10, int(deadline - time.monotonic())),
    )
    client.on_cell_executed = on_executed
    timed_out = False
    kernel_process = None
    current = -1
    try:
        with client.setup_kernel():
            try:
                kernel_process = client.km.provisioner.process
                report({"kernel_pgid": os.getpgid(kernel_process.pid)})
            except Exception:
                pass
            asker = client.km.blocking_client()
            asker.start_channels()
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                remaining = deadline - time.monotonic()
                if remaining < 1:
                    timed_out = True
                    result["cell_errors"].append(f"cell {index + 1}: not run, the time budget was used up")
                    break
                client.timeout = int(remaining)
                current = index
                client.execute_cell(cell, index)
                reply = replies.get(index, {})
                if reply.get("status") == "error":
                    if reply.get("ename") == _TIMEOUT_ENAME:
                        timed_out = True
                        result["cell_errors"].append(f"cell {index + 1}: interrupted after running out of time")
                    else:
                        result["cell_errors"].append(f"cell {index + 1}: {reply.get('ename')}: {str(reply.get('evalue'))[:200]}")
            current = len(nb.cells)
            seconds = max(1.0, min(30.0, collect_deadline - time.monotonic()))
            result["values"].update(_collect_values(asker, job.get("values") or {}, seconds))
    except DeadKernelError:
        result["status"] = "error"
        where = f" while running cell {current + 1}" if 0 <= current < len(nb.cells) else " while collecting the answers"
        result["detail"] = _kernel_death(kernel_process) + where
    finally:
        if kernel_process is not None:  # nothing of the kernel may touch the artefacts we now read
            try:
                os.killpg(os.getpgid(kernel_process.pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError, OSError):
                pass
    # 3. artefacts: the learner's fitted model predicts on the grader's inputs, in a fresh interpreter
    for qid, spec in (job.get("artefacts") or {}).items():
        path = workdir / "artefacts" / f"{qid}.pkl"
        if not path.is_file():
            result["values"][qid] = {"ok": False, "error": f"no model was submitted (submit_model({qid!r}, model))"}
            continue
        budget = max(1.0, collect_deadline - time.monotonic())
        result["values"][qid] = _fresh_python(_ARTEFACT_RUNNER, {"path": str(path), **spec}, budget, workdir)
    if result["status"] == "error":
        return result
    if timed_out:
        result["status"] = "timeout"
        result["detail"] = "some cells ran out of time; answers they would have set count as timeouts"
    elif result["cell_errors"]:
        result["detail"] = f"{len(result['cell_errors'])} cell(s) raised; first: {result['cell_errors'][0]}"
    return result


def _child_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="internal: run one notebook for course-utils grade")
    parser.add_argument("--notebook", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--result-fd", type=int, required=True)
    parser.add_argument("--cells-deadline", type=float, required=True)
    parser.add_argument("--collect-deadline", type=float, required=True)
    args = parser.parse_args(argv)
    _set_not_dumpable()
    job = json.loads(sys.stdin.read() or "{}")
    sys.stdin.close()
    out = os.fdopen(args.result_fd, "w", encoding="utf-8")
    os.set_inheritable(args.result_fd, False)
    workdir = Path(args.workdir)

    def report(message: dict) -> None:
        out.write(json.dumps(message, allow_nan=False) + "\n")
        out.flush()

    # The measured isolation goes first, before any submission code runs, so the report has it even
    # when the run is killed; then the kernel's process group; the result last.
    report({"isolation": _probe_isolation(workdir, str(job.get("canary_sha256", "")))})
    try:
        result = _execute(Path(args.notebook), workdir, job, args.cells_deadline, args.collect_deadline, report)
    except Exception as exc:  # report, so the parent records an error rather than silence
        result = {"status": "error", "detail": f"could not run the notebook: {type(exc).__name__}: {str(exc)[:300]}",
                  "values": {}, "cell_errors": []}
    report({"result": result})
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
