"""Run one untrusted notebook in a confined child process and bring back only its answers.

The grader must assume a submission is hostile: it may loop forever, eat memory, crash the kernel,
patch the kernel, or go looking for the instructor's expected answers. So the parent process
(which holds the hidden spec) never executes submission code. For each notebook it starts a child:

* in its own process group (and, where Linux allows, its own PID namespace), killed as a whole
  when the wall-clock budget runs out;
* under ``setrlimit`` caps on address space, CPU seconds and file size, set before ``exec``;
* where Linux namespaces are available (``unshare``; as root, or unprivileged with user
  namespaces): with no network interface, the spec and the submissions folder hidden under empty
  mounts, every other mount read-only except a private scratch folder, and all capabilities
  dropped so the child cannot undo any of it;
* the child (this module's ``_child_main``) executes the notebook with nbclient over IPC sockets,
  then evaluates each question's variable in the kernel, converts the values to plain JSON types
  and writes them to a pipe inherited from the parent. The kernel itself does not inherit the pipe.

Where namespaces are not available the run still gets the process group, the limits and the
timeout, and :class:`Isolation` records what was missing, so the report can say so.
"""

from __future__ import annotations

import argparse
import json
import os
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

MAX_RESULT_BYTES = 16 * 2**20
_MARKER = "__course_grader_value__:"
_TIMEOUT_ENAME = "CourseGraderCellTimeout"


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

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {self.timeout}.")
        for name in ("memory_mb", "file_size_mb", "cpu_seconds"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1 or None, got {value}.")

    def effective_cpu_seconds(self) -> int:
        return int(self.cpu_seconds or self.timeout * max(1, os.cpu_count() or 1) + 30)


@dataclass
class Isolation:
    """How the child was confined, as measured (not assumed) where possible."""

    method: str = "process group"
    network_isolated: bool = False
    spec_hidden: bool = False
    filesystem_read_only: bool = False
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [self.method, "no network" if self.network_isolated else "NETWORK OPEN",
                 "spec hidden" if self.spec_hidden else "SPEC READABLE",
                 "read-only files" if self.filesystem_read_only else "FILES WRITABLE"]
        return ", ".join(parts)


_PROBE_CACHE: dict[str, list[str] | None] = {}


def namespace_command() -> list[str] | None:
    """The ``unshare`` prefix that works on this machine, or ``None`` (probed once per process).

    As root the mount/net/PID namespaces need no user namespace; otherwise an unprivileged user
    namespace maps the caller to root inside it, which is what allows the mounts. ``setpriv``
    must exist too: without dropping capabilities the child could simply unmount what hides the spec.
    """
    if "cmd" in _PROBE_CACHE:
        return _PROBE_CACHE["cmd"]
    found = None
    if sys.platform.startswith("linux") and shutil.which("unshare") and shutil.which("setpriv") and shutil.which("mount"):
        candidates = [["unshare", "--user", "--map-root-user"]]
        if os.geteuid() == 0:
            candidates.insert(0, ["unshare"])
        for prefix in candidates:
            cmd = prefix + ["--mount", "--net", "--pid", "--fork", "--mount-proc"]
            try:
                probe = subprocess.run(
                    cmd + ["sh", "-c", "mount -t tmpfs tmpfs /tmp && mount -o remount,bind,ro / && "
                           "setpriv --bounding-set=-all --inh-caps=-all --no-new-privs -- true"],
                    capture_output=True, timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if probe.returncode == 0:
                found = cmd
                break
    _PROBE_CACHE["cmd"] = found
    return found


def _mount_points() -> list[str]:
    """Mount points of this machine, so the child can make each one read-only."""
    points = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            for line in fh:
                raw = line.split()[4]
                points.append(raw.encode().decode("unicode_escape"))
    except OSError:
        return ["/"]
    skip = ("/proc", "/sys", "/dev")
    return [p for p in points if not any(p == s or p.startswith(s + "/") for s in skip)]


def _setup_script(workdir: Path, hide: Sequence[Path], child_argv: Sequence[str]) -> str:
    """The shell run inside the new namespaces: mounts first, then drop every capability and exec."""
    q = shlex.quote
    lines = ["set -e", "mount --make-rprivate / 2>/dev/null || true",
             f"mount --bind {q(str(workdir))} {q(str(workdir))}"]
    for point in _mount_points():
        if Path(point) == workdir:
            continue
        lines.append(f"mount -o remount,bind,ro {q(point)} 2>/dev/null || true")
    for path in hide:
        if path.is_dir():
            lines.append(f"mount -t tmpfs -o size=16k,mode=0000 tmpfs {q(str(path))}")
        elif path.exists():
            lines.append(f"mount --bind /dev/null {q(str(path))}")
    lines.append("exec setpriv --bounding-set=-all --inh-caps=-all --no-new-privs -- "
                 + " ".join(q(a) for a in child_argv))
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
                resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))
            except (ValueError, OSError):
                pass

        if limits.memory_mb:
            cap(resource.RLIMIT_AS, limits.memory_mb * 2**20)
        if limits.file_size_mb:
            cap(resource.RLIMIT_FSIZE, limits.file_size_mb * 2**20)
        cap(resource.RLIMIT_CPU, limits.effective_cpu_seconds())
        cap(resource.RLIMIT_CORE, 0)

    return apply


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What came back from one notebook: per-question raw values and what happened on the way."""

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


def _child_env(workdir: Path) -> dict[str, str]:
    """A small, explicit environment: nothing of the parent's (tokens, spec paths) leaks by accident."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "COURSE_PROFILE", "COURSE_DEVICE", "VIRTUAL_ENV", "PYTHONPATH", "CUDA_VISIBLE_DEVICES")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    for name, sub in (("HOME", "home"), ("TMPDIR", "tmp"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                      ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "mpl"), ("HF_HOME", "hf"),
                      ("XDG_CACHE_HOME", "cache")):
        (workdir / sub).mkdir(exist_ok=True)
        env[name] = str(workdir / sub)
    env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
                "PYDEVD_DISABLE_FILE_VALIDATION": "1", "JUPYTER_PLATFORM_DIRS": "1"})
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

    jupyter starts the kernel in a new session, so killing the child's group misses it. Inside a PID
    namespace that does not matter (the namespace dies with its first process), and the pgid the
    child reported is a namespace-local number that must not be used here. Outside, the pgid came
    over the private pipe (not from a file the kernel could forge) and is only used while the
    process still looks like this run's kernel.
    """
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if namespaced or not isinstance(kernel_pgid, int) or isinstance(kernel_pgid, bool) or kernel_pgid <= 1:
        return
    cmdline = Path(f"/proc/{kernel_pgid}/cmdline")
    if Path("/proc/self").exists() and (not cmdline.exists() or str(workdir).encode() not in cmdline.read_bytes()):
        return
    try:
        os.killpg(kernel_pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_notebook(
    notebook: str | os.PathLike,
    variables: dict[str, dict],
    limits: Limits | None = None,
    hide: Sequence[str | os.PathLike] = (),
    use_namespaces: bool | None = None,
) -> RunResult:
    """Execute ``notebook`` in a confined child and return the collected values.

    ``variables`` maps question id to ``{"variable": name, "call_cases": [...]}`` (the public
    manifest). ``hide`` lists paths the child must not see (the spec, the submissions folder).
    ``use_namespaces=None`` uses them when this machine allows; ``False`` forces the fallback.
    """
    limits = limits or Limits()
    if os.name != "posix":
        raise ConfigError("grading runs submissions in confined POSIX processes; use Linux, macOS or WSL.")
    started = time.monotonic()
    prefix = namespace_command() if use_namespaces in (None, True) else None
    if use_namespaces and prefix is None:
        raise ConfigError("Linux namespaces (unshare + setpriv) are not available here; drop --require-isolation.")
    with tempfile.TemporaryDirectory(prefix="cg-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp).resolve()
        os.chmod(workdir, 0o700)
        target = workdir / "notebook.ipynb"
        shutil.copyfile(notebook, target)
        read_fd, write_fd = os.pipe()
        reserve = max(5.0, min(20.0, 0.2 * limits.timeout))  # time kept for collecting the answers
        child_argv = [sys.executable, "-m", "course_utils.grading.sandbox", "--notebook", str(target),
                      "--workdir", str(workdir), "--result-fd", str(write_fd),
                      # CLOCK_MONOTONIC is shared by all processes, so both deadlines are absolute
                      "--cells-deadline", repr(started + max(1.0, limits.timeout - reserve)),
                      "--collect-deadline", repr(started + limits.timeout - 2.0),
                      "--variables", json.dumps(variables)]
        for path in hide:
            child_argv += ["--hidden", str(Path(path).resolve())]
        if prefix:
            hidden = [Path(p).resolve() for p in hide]
            command = prefix + ["sh", "-c", _setup_script(workdir, hidden, child_argv)]
        else:
            command = child_argv
        log = open(workdir / "child.log", "wb")
        try:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=_child_env(workdir), cwd=workdir, pass_fds=(write_fd,),
                                    start_new_session=True, preexec_fn=_preexec(limits))
        finally:
            os.close(write_fd)
            log.close()
        payload, killed = _read_until(read_fd, proc, started + limits.timeout)
        messages = _parse_messages(payload)
        _kill_everything(proc, workdir, messages.get("kernel_pgid"), bool(prefix))
        proc.wait()
        elapsed = time.monotonic() - started
        tail = (workdir / "child.log").read_bytes()[-2000:].decode("utf-8", "replace")
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
    isolation = Isolation(method="namespaces" if namespaced else "process group + resource limits")
    if isinstance(probe, dict):
        for key in ("network_isolated", "spec_hidden", "filesystem_read_only"):
            setattr(isolation, key, bool(probe.get(key)))
        isolation.notes = [str(n) for n in probe.get("notes", [])][:10]
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


# --------------------------------------------------------------------------------------------
# Child side: executed as `python -m course_utils.grading.sandbox ...` inside the confinement
# --------------------------------------------------------------------------------------------

# Runs in the submission's kernel, so it may only use the standard library. It converts a value to
# plain JSON types (numpy/torch/pandas via tolist/item) and prints it behind a marker.
_COLLECTOR = r'''
def __course_grader_collect(name, cases, marker):
    import json, math
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
    def wrap(fn):
        try:
            return {"ok": True, "value": plain(fn())}
        except BaseException as exc:
            return {"ok": False, "error": (type(exc).__name__ + ": " + str(exc))[:300]}
    space = globals()
    if name not in space:
        out = {"ok": False, "error": "NameError: " + name + " is not defined"}
    elif cases:
        target = space[name]
        out = {"ok": True, "value": [wrap(lambda c=c: target(*json.loads(json.dumps(c)))) for c in cases]}
    else:
        out = wrap(lambda: space[name])
    print(marker + json.dumps(out, allow_nan=False))
'''


def _probe_isolation(hidden: Sequence[str], workdir: Path) -> dict:
    """Measure the confinement from the inside, so the report states facts rather than hopes."""
    import socket

    notes = []
    try:
        interfaces = [name for _, name in socket.if_nameindex()]
    except OSError:
        interfaces = ["?"]
    network = all(name == "lo" for name in interfaces)
    readable = [p for p in hidden if _readable(p)]
    if readable:
        notes.append(f"{len(readable)} hidden path(s) still readable by the submission")
    probe = Path(sys.prefix) / ".course_grader_write_probe"
    try:
        probe.write_text("x")
        probe.unlink()
        read_only = False
    except OSError:
        read_only = True
    return {"network_isolated": network, "spec_hidden": not readable, "filesystem_read_only": read_only, "notes": notes}


def _readable(path: str) -> bool:
    """Whether a submission could read anything at ``path`` (a hidden dir is empty or unlistable)."""
    try:
        if os.path.isdir(path):
            return bool(os.listdir(path))
        with open(path, "rb") as fh:
            return bool(fh.read(1))
    except OSError:
        return False


def _set_not_dumpable() -> None:
    """Stop the kernel (same user) from opening this process's pipe through /proc/<pid>/fd."""
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


def _execute(nb_path: Path, workdir: Path, variables: dict[str, dict], deadline: float, collect_deadline: float,
             report) -> dict:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError
    from traitlets.config import Config

    result: dict = {"status": "ok", "detail": "", "values": {}, "cell_errors": []}
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
            for qid, spec in variables.items():
                seconds = max(1, min(30, int(collect_deadline - time.monotonic())))
                result["values"][qid] = _collect_one(client, spec, replies, seconds)
    except DeadKernelError:
        result["status"] = "error"
        where = f" while running cell {current + 1}" if 0 <= current < len(nb.cells) else " while collecting the answers"
        result["detail"] = _kernel_death(kernel_process) + where
        return result
    if timed_out:
        result["status"] = "timeout"
        result["detail"] = "some cells ran out of time; answers they would have set count as timeouts"
    elif result["cell_errors"]:
        result["detail"] = f"{len(result['cell_errors'])} cell(s) raised; first: {result['cell_errors'][0]}"
    return result


def _collect_one(client, spec: dict, replies: dict, seconds: int) -> dict:
    import nbformat

    code = _COLLECTOR + f"\n__course_grader_collect({spec['variable']!r}, {json.dumps(spec.get('call_cases', []))}, {_MARKER!r})\n"
    code += "del __course_grader_collect\n"
    cell = nbformat.v4.new_code_cell(code)
    client.nb.cells.append(cell)  # nbclient addresses outputs by the cell's index in the notebook
    index = len(client.nb.cells) - 1
    client.timeout = seconds
    try:
        client.execute_cell(cell, index, store_history=False)
    except Exception as exc:  # noqa: BLE001 - a dead kernel during collection is an error for this answer
        if type(exc).__name__ == "DeadKernelError":
            raise
        return {"ok": False, "error": f"collection failed: {type(exc).__name__}"}
    if replies.get(index, {}).get("ename") == _TIMEOUT_ENAME:
        return {"ok": False, "error": f"timeout: evaluating the answer did not finish in {seconds} s", "timeout": True}
    lines = [line for out in cell.outputs if out.get("output_type") == "stream"
             for line in out.get("text", "").splitlines() if line.startswith(_MARKER)]
    if not lines:
        return {"ok": False, "error": "the kernel returned no value for this answer"}
    try:
        value = json.loads(lines[-1][len(_MARKER):])
    except json.JSONDecodeError:
        return {"ok": False, "error": "the kernel returned an unreadable value"}
    return value if isinstance(value, dict) else {"ok": False, "error": "malformed value"}


def _child_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="internal: run one notebook for course-utils grade")
    parser.add_argument("--notebook", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--result-fd", type=int, required=True)
    parser.add_argument("--cells-deadline", type=float, required=True)
    parser.add_argument("--collect-deadline", type=float, required=True)
    parser.add_argument("--variables", required=True)
    parser.add_argument("--hidden", action="append", default=[])
    args = parser.parse_args(argv)
    _set_not_dumpable()
    out = os.fdopen(args.result_fd, "w", encoding="utf-8")
    workdir = Path(args.workdir)

    def report(message: dict) -> None:
        out.write(json.dumps(message, allow_nan=False) + "\n")
        out.flush()

    # The measured isolation goes first, before any submission code runs, so the report has it even
    # when the run is killed; then the kernel's process group; the result last.
    report({"isolation": _probe_isolation(args.hidden, workdir)})
    try:
        result = _execute(Path(args.notebook), workdir, json.loads(args.variables), args.cells_deadline,
                          args.collect_deadline, report)
    except Exception as exc:  # report, so the parent records an error rather than silence
        result = {"status": "error", "detail": f"could not run the notebook: {type(exc).__name__}: {str(exc)[:300]}",
                  "values": {}, "cell_errors": []}
    report({"result": result})
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
