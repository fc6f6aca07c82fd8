"""The grading child: runs inside the confinement, as ``python -I`` (see confinement.python_command).

It never runs submission code in its own process. Every module it uses is imported at the top, before
any learner code exists anywhere, and it starts in a read-only ``/`` with no working directory or
environment on ``sys.path``: a file a submission writes cannot become a module the child imports.

1. It measures the isolation (network interfaces, write probes, the namespaces against the grader's,
   the cgroups, and a **canary** search for the spec's canary in every file it can read) and reports it
   first, before any learner code has run;
2. calls **function answers**, each in a fresh isolated interpreter of its own
   (:mod:`course_utils.grading.runners.function`) on the grader's random cases;
3. executes the notebook with nbclient (``allow_errors``), with ``COURSE_GRADER_ARTEFACTS`` pointing
   at the scratch folder where :func:`course_utils.grading.submit.submit_model` writes model files;
4. collects **value answers** through the kernel's ``user_expressions`` in the reply to one request;
5. kills the kernel's process group, then reads each submitted model's **files** with the grader's code
   in a fresh isolated interpreter (:mod:`course_utils.grading.runners.artefact`) that predicts on the
   grader's inputs; the labels never leave the parent.

Messages go back on a pipe only this process holds (not inherited; the process is not dumpable, so
the kernel, same uid, cannot open it through ``/proc``): exactly one ``isolation`` line, at most one
``kernel_pgid`` line and one ``result`` line. The parent voids a run with any other line.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import selectors  # noqa: F401 - imported now, before learner code exists (used by nbclient and subprocess)
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import nbformat
from jupyter_client import KernelManager  # noqa: F401 - imported up front, used through nbclient
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from traitlets.config import Config

from course_utils.grading.confinement import SYSTEM_DIRS, exposed_paths, python_command

TIMEOUT_ENAME = "CourseGraderCellTimeout"
CANARY_PATTERN = re.compile(rb"cg-canary-[0-9a-f]{32}")


def collector_source() -> str:
    return (Path(__file__).with_name("collector.py")).read_text(encoding="utf-8")


_COLLECTOR = collector_source()  # read now: the file is read-only, but read before anything else runs


# --------------------------------------------------------------------------------------------
# Fresh interpreters
# --------------------------------------------------------------------------------------------


def run_program(module: str, job: dict, seconds: float) -> dict:
    """Run ``module`` in a fresh ``python -I`` with ``job`` on stdin; its first stdout line, or an error."""
    try:
        proc = subprocess.run(python_command(module), input=json.dumps(job).encode(), capture_output=True,
                              timeout=max(1.0, seconds), cwd="/", start_new_session=True)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timeout: did not finish in {seconds:.0f} s", "timeout": True}
    lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    if not lines:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        return {"ok": False, "error": f"the interpreter exited without a result ({proc.returncode}): {tail[0][:200]}"}
    try:
        value = json.loads(lines[0])
    except json.JSONDecodeError:
        return {"ok": False, "error": "unreadable result"}
    return value if isinstance(value, dict) else {"ok": False, "error": "malformed result"}


def extract_definitions(nb_path: Path) -> str:
    """The notebook's top-level imports, function and class definitions, as one module's source.

    Assignments of literal constants are kept too. Statements with effects (data loading, training,
    prints, hooks) are left out: a function answer is judged by what its definition computes on the
    grader's inputs, in an interpreter with no state of the learner's kernel. Cells that do not parse
    (magics) are skipped statement by statement.
    """
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
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


# --------------------------------------------------------------------------------------------
# Measuring the isolation
# --------------------------------------------------------------------------------------------


def probe_isolation(workdir: Path, canary_sha256: str, host_namespaces: dict, cgroups: Sequence[str],
                    namespaced: bool = True) -> dict:
    """Measure the confinement from the inside, so the report states facts rather than hopes.

    Unisolated (no namespaces: ``--allow-unisolated``), the child sees the grader's own file system, so the
    spec is readable by construction; the file-system searches (seconds per notebook over a whole host)
    would only confirm it, and are skipped: ``spec_hidden`` is False and a note says why.
    """
    notes = []
    try:
        interfaces = [name for _, name in socket.if_nameindex()]
    except OSError:
        interfaces = ["?"]
    network = all(name == "lo" for name in interfaces)
    read_only = not _writable(Path(sys.prefix)) and not _writable(Path("/")) and not _writable(Path("/usr"))
    proc_sys_ro = not _writable_file("/proc/sys/kernel/core_pattern") and not _writable_file("/sys/kernel/uevent_helper")
    skip_trees = [str(p) for p in exposed_paths()] + list(SYSTEM_DIRS) + ["/proc", "/dev/fd"]
    if namespaced:
        found, scanned = _canary_search(canary_sha256, skip_trees)
        gits = _find_named(".git", skip_trees)
    else:
        found, scanned, gits = [], 0, []
        notes.append("unisolated: the child can read whatever the grader's user can, the spec included (not searched)")
    if found:
        notes.append(f"the spec's canary is readable at {found[0]}")
    if gits:
        notes.append(f"a .git folder is readable at {gits[0]}")
    own = {}
    for kind in host_namespaces:
        try:
            own[kind] = os.readlink(f"/proc/self/ns/{kind}")
        except OSError:
            own[kind] = None
    separate = sorted(k for k, v in host_namespaces.items() if own.get(k) is not None and own[k] != v)
    try:
        membership = Path("/proc/self/cgroup").read_text()
    except OSError:
        membership = ""
    in_cgroups = bool(cgroups) and all(("/" + Path(c).name) in membership for c in cgroups)
    home = os.path.expanduser("~")
    return {"network_isolated": network, "spec_hidden": namespaced and not found and bool(canary_sha256) and not gits,
            "filesystem_read_only": read_only, "proc_sys_read_only": proc_sys_ro, "non_root": os.geteuid() != 0,
            "private_tmp": _private_tmp(workdir), "ipc_isolated": "ipc" in separate,
            "namespaces": separate, "in_run_cgroup": in_cgroups,
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


def _canary_search(canary_sha256: str, skip: Sequence[str], max_bytes: int = 4 * 2**20,
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
    except Exception:  # noqa: BLE001
        pass


# --------------------------------------------------------------------------------------------
# Running the notebook
# --------------------------------------------------------------------------------------------


def _kernel_death(process) -> str:
    code = None
    if process is not None:
        try:
            code = process.wait(timeout=2)
        except Exception:  # noqa: BLE001
            code = process.poll()
    if code is not None and code < 0:
        sig = signal.Signals(-code).name
        why = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (killed: memory limit?)", "SIGSEGV": " (segmentation fault)"}
        return f"the kernel died with {sig}{why.get(sig, '')}"
    return f"the kernel died (exit code {code})" if code is not None else "the kernel died"


def collect_values(kc, variables: dict[str, str], seconds: float) -> dict[str, dict]:
    """Every value answer in one request's ``user_expressions``, read from that request's own reply."""
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
            value = json.loads(item["data"]["text/plain"])
        except Exception:  # noqa: BLE001
            try:
                value = json.loads(ast.literal_eval(item["data"]["text/plain"]))
            except Exception:  # noqa: BLE001
                error = item.get("evalue") if isinstance(item, dict) else None
                value = {"ok": False, "error": "the kernel returned no value for this answer"
                         + (f": {str(error)[:200]}" if error else "")}
        values[qid] = value if isinstance(value, dict) else {"ok": False, "error": "malformed value"}
    return values


def execute(nb_path: Path, workdir: Path, job: dict, deadline: float, collect_deadline: float, report) -> dict:
    result: dict = {"status": "ok", "detail": "", "values": {}, "cell_errors": []}
    functions = job.get("functions") or {}
    if functions:  # 1. function answers, before any learner code runs in a kernel
        source = extract_definitions(nb_path)
        for qid, spec in functions.items():
            budget = min(30.0, max(1.0, deadline - time.monotonic()))
            result["values"][qid] = run_program("course_utils.grading.runners.function",
                                                {"source": source, "name": spec["name"], "cases": spec["cases"]}, budget)
    nb = nbformat.read(str(nb_path), as_version=4)
    config = Config()
    config.KernelManager.transport = "ipc"  # no TCP: works with no network interface at all
    config.KernelManager.ip = str(workdir / "runtime" / "k")
    replies: dict[int, dict] = {}

    def on_executed(cell, cell_index, execute_reply):
        replies[cell_index] = execute_reply.get("content", {}) if execute_reply else {}

    client = NotebookClient(
        nb, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
        error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "cell timed out", "traceback": []},
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
            except Exception:  # noqa: BLE001
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
                    if reply.get("ename") == TIMEOUT_ENAME:
                        timed_out = True
                        result["cell_errors"].append(f"cell {index + 1}: interrupted after running out of time")
                    else:
                        result["cell_errors"].append(f"cell {index + 1}: {reply.get('ename')}: {str(reply.get('evalue'))[:200]}")
            current = len(nb.cells)
            seconds = max(1.0, min(30.0, collect_deadline - time.monotonic()))
            result["values"].update(collect_values(asker, job.get("values") or {}, seconds))
    except DeadKernelError:
        result["status"] = "error"
        where = f" while running cell {current + 1}" if 0 <= current < len(nb.cells) else " while collecting the answers"
        result["detail"] = _kernel_death(kernel_process) + where
    finally:
        if kernel_process is not None:  # nothing of the kernel may touch the model files we now read
            try:
                os.killpg(os.getpgid(kernel_process.pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError, OSError):
                pass
    for qid, spec in (job.get("artefacts") or {}).items():  # 5. model files, read by the grader's code
        folder = workdir / "artefacts" / qid
        if not folder.exists() and not folder.is_symlink():
            result["values"][qid] = {"ok": False, "error": f"no model was submitted (submit_model({qid!r}, model))"}
            continue
        budget = max(1.0, collect_deadline - time.monotonic())
        result["values"][qid] = run_program("course_utils.grading.runners.artefact", {"folder": str(folder), **spec}, budget)
    if result["status"] == "error":
        return result
    if timed_out:
        result["status"] = "timeout"
        result["detail"] = "some cells ran out of time; answers they would have set count as timeouts"
    elif result["cell_errors"]:
        result["detail"] = f"{len(result['cell_errors'])} cell(s) raised; first: {result['cell_errors'][0]}"
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="internal: run one notebook for course-utils grade")
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

    # The measured isolation goes first, before any submission code runs anywhere.
    report({"isolation": probe_isolation(workdir, str(job.get("canary_sha256", "")), job.get("host_namespaces") or {},
                                         job.get("cgroups") or [], namespaced=bool(job.get("namespaced", True)))})
    try:
        result = execute(workdir / "notebook.ipynb", workdir, job, args.cells_deadline, args.collect_deadline, report)
    except Exception as exc:  # noqa: BLE001 - report, so the parent records an error rather than silence
        result = {"status": "error", "detail": f"could not run the notebook: {type(exc).__name__}: {str(exc)[:300]}",
                  "values": {}, "cell_errors": []}
    report({"result": result})
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
