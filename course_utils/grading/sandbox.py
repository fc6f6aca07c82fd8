"""Run one untrusted notebook in a confined child and bring back only what the grader asked for.

The grader assumes a submission is hostile: it may loop forever, eat memory, crash or patch its
kernel, print fake results, plant modules for the grader to import, go looking for the instructor's
expected answers, or try to reach the host and other learners. So the parent process (which holds
the spec) never executes submission code. For each notebook it starts a child
(:mod:`course_utils.grading.child`) in the confinement of :mod:`course_utils.grading.confinement`:
new namespaces (PID, mount, network, IPC, UTS), a new read-only root with a size-capped tmpfs scratch,
uid 65534 without capabilities, a cgroup of its own and per-process limits.

The child's answer comes back on a pipe as exactly one ``isolation`` message (measured inside, before
any learner code runs), at most one ``kernel_pgid`` and exactly one ``result``. A second message of a
kind, a message of another kind or a line that is not one JSON object **voids the run**: it cannot
come from the grader's own code, so the run's answers are not trusted. The parent waits for every
process of the run to be gone (and removes its cgroup) before it scores anything.

Without namespaces the run gets the process group, the limits and the timeout only; the grader
refuses that mode unless the instructor passes ``--allow-unisolated`` (recorded in the report).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from course_utils.errors import ConfigError
from course_utils.grading.confinement import (  # noqa: F401 - Limits and the probe are part of this API
    Limits,
    RunCgroup,
    child_env,
    exposed_paths,
    namespace_command,
    namespace_ids,
    preexec,
    python_command,
    setup_script,
    unisolated_workdir,
)
from course_utils.grading.submit import ARTEFACTS_ENV

MAX_RESULT_BYTES = 64 * 2**20
MESSAGE_KINDS = ("isolation", "kernel_pgid", "result")


@dataclass
class Isolation:
    """How the child was confined, as measured from inside it (and the cgroup limits the parent set)."""

    method: str = "process group"
    network_isolated: bool = False
    spec_hidden: bool = False  # proven by the canary search, not assumed from the mounts
    filesystem_read_only: bool = False
    proc_sys_read_only: bool = False
    non_root: bool = False
    private_tmp: bool = False
    ipc_isolated: bool = False
    namespaces: list[str] = field(default_factory=list)
    cgroup_limits: dict[str, str] = field(default_factory=dict)
    files_scanned: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [self.method, "no network" if self.network_isolated else "NETWORK OPEN",
                 "canary not found" if self.spec_hidden else "SPEC READABLE",
                 "read-only files" if self.filesystem_read_only else "FILES WRITABLE",
                 "non-root" if self.non_root else "ROOT",
                 "own IPC" if self.ipc_isolated else "SHARED IPC",
                 "cgroup " + ",".join(sorted(self.cgroup_limits)) if self.cgroup_limits else "no cgroup"]
        return ", ".join(parts)


@dataclass
class Job:
    """What the parent asks of one notebook. Travels to the child on its stdin, never on argv.

    ``values``: question id -> variable name (collected from the kernel).
    ``functions``: question id -> {"name": function name, "cases": [[arg, ...], ...]}.
    ``artefacts``: question id -> {"method": "predict" | "predict_proba" | "predict_texts", "inputs": [...],
    "formats": [...]}.
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
    memory_peak_mb: float | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["isolation"] = asdict(self.isolation)
        return out


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
        root.mkdir()
        source = base / "submitted.ipynb"  # our copy: the learner's path is read once, here
        source.write_bytes(Path(notebook).read_bytes())
        cgroup = RunCgroup.create(limits, f"course-grader-{os.getpid()}-{base.name}") if prefix else RunCgroup(why_not="unisolated")
        payload = {**asdict(job), "namespaced": bool(prefix), "host_namespaces": namespace_ids() if prefix else {},
                   "cgroups": [str(f) for f in cgroup.folders]}
        read_fd, write_fd = os.pipe()
        # time kept after the cells for collecting the answers, and for models to predict (BERT: ~15-30 s)
        reserve = max(8.0, min(30.0, 0.25 * limits.timeout)) + (min(90.0, 0.3 * limits.timeout) if job.artefacts else 0.0)
        child_argv = python_command("course_utils.grading.child", "--workdir", str(workdir), "--result-fd", str(write_fd),
                                    # CLOCK_MONOTONIC is shared by all processes, so both deadlines are absolute
                                    "--cells-deadline", repr(started + max(1.0, limits.timeout - reserve)),
                                    "--collect-deadline", repr(started + limits.timeout - 2.0))
        if prefix:
            command = prefix + ["sh", "-c", setup_script(root, workdir, source, child_argv, as_root, limits.scratch_mb)]
        else:
            unisolated_workdir(workdir, source)
            command = child_argv
        log = open(base / "child.log", "wb")  # outside the scratch: the child cannot write it by path
        try:
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                    env=child_env(workdir, job.env, ARTEFACTS_ENV), cwd="/", pass_fds=(write_fd,),
                                    start_new_session=True, preexec_fn=preexec(limits, cgroup.procs_files))
        except BaseException:
            cgroup.remove()
            raise
        finally:
            os.close(write_fd)
            log.close()
        try:
            proc.stdin.write(json.dumps(payload).encode("utf-8"))
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            data, killed = _read_until(read_fd, proc, started + limits.timeout)
            messages, problem = parse_messages(data)
            _kill_everything(proc, workdir, messages.get("kernel_pgid"), bool(prefix))
            proc.wait()
        finally:
            peak, hit = cgroup.memory_peak_mb(), cgroup.memory_limit_hit()
            cgroup.remove()
        elapsed = time.monotonic() - started
        tail = (base / "child.log").read_bytes()[-2000:].decode("utf-8", "replace")
    result = _result_from(messages, problem, killed, elapsed, tail, limits, bool(prefix), cgroup)
    result.memory_peak_mb = round(peak, 1) if peak is not None else None
    if hit and result.status == "error":
        result.detail = f"the run hit its memory limit ({limits.memory_mb} MB): {result.detail}"
    return result


def _read_until(fd: int, proc: subprocess.Popen, deadline: float) -> tuple[bytes, bool]:
    """Read the child's messages until EOF or the deadline; True means the deadline killed it."""
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


def parse_messages(payload: bytes) -> tuple[dict, str]:
    """The child's messages, and what was wrong with them (``""``: nothing).

    One JSON object per line, each with exactly one key of :data:`MESSAGE_KINDS`, ``isolation`` first,
    each kind at most once. Anything else is a problem that voids the run's answers; the first
    ``isolation`` line (written before any learner code ran) is kept either way.
    """
    merged: dict = {}
    problem = ""
    lines = payload.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(payload) > MAX_RESULT_BYTES:
        problem = "the result channel carried more than the grader reads"
    for number, line in enumerate(lines):
        try:
            message = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            problem = problem or f"line {number + 1} of the result channel is not a message"
            continue
        if not isinstance(message, dict) or len(message) != 1 or next(iter(message)) not in MESSAGE_KINDS:
            problem = problem or f"line {number + 1} of the result channel is not a message of the grader's"
            continue
        kind = next(iter(message))
        if number == 0 and kind != "isolation":
            problem = problem or "the result channel did not start with the isolation record"
        if kind in merged:
            problem = problem or f"a second {kind} message on the result channel"
            continue
        merged[kind] = message[kind]
    return merged, problem


def _kill_everything(proc: subprocess.Popen, workdir: Path, kernel_pgid, namespaced: bool) -> None:
    """Kill the child's process group; outside a PID namespace also the kernel's own group."""
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


_PROBED = ("network_isolated", "spec_hidden", "filesystem_read_only", "proc_sys_read_only", "non_root", "private_tmp",
           "ipc_isolated")


def _result_from(messages: dict, problem: str, killed: bool, elapsed: float, log_tail: str, limits: Limits,
                 namespaced: bool, cgroup: RunCgroup) -> RunResult:
    probe = messages.get("isolation")
    isolation = Isolation(method="namespaces + new root" if namespaced else "UNISOLATED: process group + resource limits")
    if isinstance(probe, dict):
        for key in _PROBED:
            setattr(isolation, key, probe.get(key) is True)
        isolation.namespaces = [str(n) for n in probe.get("namespaces", [])][:8] if isinstance(probe.get("namespaces"), list) else []
        files = probe.get("files_scanned")
        isolation.files_scanned = files if isinstance(files, int) and not isinstance(files, bool) else 0
        isolation.notes = [str(n)[:200] for n in probe.get("notes", [])][:10] if isinstance(probe.get("notes"), list) else []
        if cgroup.enforced and probe.get("in_run_cgroup") is True:
            isolation.cgroup_limits = dict(cgroup.enforced)
    if cgroup.why_not and namespaced:
        isolation.notes.append(f"no cgroup: {cgroup.why_not}"[:200])
    if problem:
        return RunResult("error", f"run voided: {problem}", {}, elapsed, isolation)
    data = messages.get("result") if isinstance(messages.get("result"), dict) else None
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
