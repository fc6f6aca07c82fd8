"""Instructor grading: hidden-spec scoring, confinement of submissions, and the CSV/JSON report.

The scoring rules are tested directly on every question (fast). Notebooks are executed end to end
for a small set of cheap topics only: a solution scores full marks, an untouched exercise zero, and
hostile submissions no more than their honest content, with the report saying what happened.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.grading import grade as grading
from course_utils.grading import questions
from course_utils.cli import main as cli_main
from course_utils.errors import ConfigError, DataError
from course_utils.metrics import threshold_for_recall
from course_utils.grading.sandbox import Limits, namespace_command, run_notebook

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "grading" / "spec.json"
SPEC = grading.load_spec(SPEC_PATH)
NAMESPACED = namespace_command() is not None
E2E_TOPICS = ["03_hyperparameter_tuning", "04_evaluation_metrics", "07_real_world_applications"]
PLAN = {
    "task": "Route each customer email of a web shop to the right support team.",
    "data": [{"type": "past tickets", "source": "helpdesk export"}, {"type": "chat logs", "source": "chat tool logs"},
             {"type": "order metadata", "source": "order database"}],
}


# --------------------------------------------------------------------------------------------
# Scoring rules on every question (the light path for topics not executed here)
# --------------------------------------------------------------------------------------------


def reference_answer(q: questions.Question, entry: dict):
    """The value a correct notebook sends back, derived from the spec (as the child would send it)."""
    if q.kind == "cases":
        return [{"ok": True, "value": v} for v in entry["expected"]]
    if q.kind == "at_least":
        return entry["floor"]
    if q.kind == "threshold":
        return threshold_for_recall(entry["y_true"], entry["scores"], entry["target_recall"])
    if q.kind == "dataset_plan":
        return PLAN
    return entry["expected"]


@pytest.mark.parametrize("q", questions.QUESTIONS, ids=lambda q: q.id)
def test_reference_answers_score_full_and_unanswered_scores_zero(q):
    entry = SPEC["questions"][q.id]
    score, status, _ = grading.score_answer(q, {"ok": True, "value": reference_answer(q, entry)}, entry)
    assert (score, status) == (entry["points"], "ok")
    unanswered = [{"ok": True, "value": None}] * len(q.call_cases) if q.call_cases else None
    assert grading.score_answer(q, {"ok": True, "value": unanswered}, entry)[:2] == (0.0, "wrong")
    assert grading.score_answer(q, {"ok": False, "error": "NameError: x"}, entry)[:2] == (0.0, "error")
    assert grading.score_answer(q, {"ok": False, "error": "NameError: x"}, entry, run_status="timeout")[1] == "timeout"
    assert grading.score_answer(q, {"ok": True, "value": {"__unsupported__": "module"}}, entry)[0] == 0.0


def _score(qid, value):
    q = questions.get(qid)
    return grading.score_answer(q, {"ok": True, "value": value}, SPEC["questions"][qid])


def test_rules_give_partial_credit_and_resist_cheap_answers():
    entry = SPEC["questions"]["q4_5"]
    assert _score("q4_5", 0.0)[:2] == (1.0, "wrong")  # recall met by flagging everyone: half marks
    assert _score("q4_5", 1.01)[0] == 0.0
    cases = [{"ok": True, "value": v} for v in SPEC["questions"]["q4_2"]["expected"]]
    cases[0] = {"ok": False, "error": "ZeroDivisionError"}
    score, status, detail = _score("q4_2", cases)
    assert status == "wrong" and score == pytest.approx(0.8) and "raised" in detail
    assert _score("q3_3", {"criterion": "entropy", "max_depth": 2, "min_samples_split": 10})[0] == 1.0  # valid, not best
    assert _score("q3_3", {"criterion": "gini", "max_depth": 99, "min_samples_split": 2})[0] == 0.0
    assert _score("q2_1", {**PLAN, "data": PLAN["data"][:2]})[0] == 0.5  # only the task-sentence quarter of 2 points
    assert _score("q1_3", 1)[1] == "wrong"  # 1 is not True
    assert _score("q3_2", " Overshot and Oscillated")[1] == "ok"
    expected = SPEC["questions"]["q3_1"]["expected"]
    assert _score("q3_1", {0.01: expected["0.01"], 0.1: 9.9})[0] == 0.5
    assert _score("q4_1", {"__float__": "nan"})[1] == "wrong"
    assert _score("q3_4", 1.5)[1] == "wrong" and _score("q3_4", 0.89)[1] == "wrong"


def test_spec_problems_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="--spec"):
        grading.load_spec(tmp_path / "nope.json")
    broken = json.loads(SPEC_PATH.read_text())
    del broken["questions"]["q4_5"]["target_recall"]
    (tmp_path / "a.json").write_text(json.dumps(broken))
    with pytest.raises(ConfigError, match=r"q4_5.*target_recall"):
        grading.load_spec(tmp_path / "a.json")
    del broken["questions"]["q4_5"]
    (tmp_path / "b.json").write_text(json.dumps(broken))
    with pytest.raises(ConfigError, match="no entry for q4_5"):
        grading.load_spec(tmp_path / "b.json")
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        grading.load_spec(tmp_path / "c.json")


def test_submission_folder_problems_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        grading.find_submissions(tmp_path / "missing")
    with pytest.raises(DataError, match="no student folders"):
        grading.find_submissions(tmp_path)
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "notes.ipynb").write_text("{}")
    with pytest.raises(DataError, match="no gradable notebooks"):
        grading.find_submissions(tmp_path)
    with pytest.raises(ConfigError, match="unknown notebook"):
        grading.find_submissions(tmp_path, ["04_metrics"])
    assert grading.find_submissions(tmp_path, ["04_evaluation_metrics"]) == (["ann"], ["04_evaluation_metrics"])


def test_a_symlinked_submission_is_refused_without_running(tmp_path):
    (tmp_path / "eve").mkdir()
    (tmp_path / "eve" / "04_evaluation_metrics.ipynb").symlink_to(SPEC_PATH)
    [report] = grading.grade(tmp_path, SPEC_PATH, notebooks=["04_evaluation_metrics"])
    assert report.status == "error" and {r.status for r in report.rows} == {"error"}
    assert all("symbolic link" in r.detail for r in report.rows)


def test_spec_stays_out_of_the_wheel_and_the_child():
    from setuptools import find_packages

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = find_packages(str(ROOT), include=include)
    assert packages and all(p.startswith("course_utils") for p in packages)
    assert not (ROOT / "grading" / "__init__.py").exists()
    package_files = [p for p in (ROOT / "course_utils").rglob("*") if p.is_file()]
    assert not any(p.suffix == ".json" for p in package_files)
    hidden = grading._hidden_paths(SPEC_PATH, ROOT / "tests")
    assert SPEC_PATH.parent in hidden  # the whole grading/ folder, backups included


def test_grade_help_is_usable(capsys):
    with pytest.raises(SystemExit):
        cli_main(["grade", "--help"])
    out = capsys.readouterr().out
    for words in ("SUBMISSIONS_DIR", "--out", "--json", "--timeout", "--spec", "submission,question,score",
                  "<student>/<NN_topic>.ipynb", "missing"):
        assert words in out


def test_limits_are_validated():
    with pytest.raises(ConfigError):
        Limits(timeout=0)
    with pytest.raises(ConfigError):
        Limits(memory_mb=0)


# --------------------------------------------------------------------------------------------
# End to end: real notebooks, confined children, the CLI's report
# --------------------------------------------------------------------------------------------

HONEST = "accuracy_80 = 0.8  # the one honest answer of every hostile notebook: worth 1 point"
CORRECT_RECALL = ("def recall(y_true, y_pred):\n"
                  "    tp = sum(1 for t, p in zip(y_true, y_pred) if t == 1 and p == 1)\n"
                  "    pos = sum(1 for t in y_true if t == 1)\n"
                  "    return tp / pos if pos else 0.0")


def _notebook(path: Path, *cells: str) -> None:
    nb = new_notebook(cells=[new_code_cell(c) for c in cells],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def _hostile(root: Path, classmate: Path) -> dict[str, int]:
    """Hostile submissions (all named like exercise 04) and the points of their honest content."""
    nb = "04_evaluation_metrics.ipynb"
    tamper = [
        "import course_utils.grading.checks as checks, course_utils.grading.questions as questions, course_utils.grading.grade as g\n"
        "checks.check = lambda *a, **k: print('✓ everything is right')\n"
        "for q in questions.QUESTIONS:\n    object.__setattr__(q, 'public_check', lambda value, context: None)\n"
        "g.RULES.update({kind: (lambda value, entry: (1.0, 'patched')) for kind in g.RULES})\n"
        "threshold = 0.999  # wrong, whatever the patched checks print\nchecks.check('q4_5', threshold)",
    ]
    if NAMESPACED:  # rewrite the package on disk; without namespaces this would really damage the checkout
        tamper.append("import pathlib\nfor m in (checks, g):\n"
                      "    p = pathlib.Path(m.__file__)\n    p.write_text(p.read_text() + '\\nRULES = {}\\n')")
    _notebook(root / "tamper_checks" / nb, HONEST, *tamper)
    _notebook(root / "patch_kernel" / nb, HONEST,
              "import json\nkernel = get_ipython().kernel\noriginal = kernel.shell_handlers['execute_request']\n"
              "async def forged(stream, ident, parent):\n"
              "    if '__course_grader' in parent['content']['code']:\n"
              "        parent['content']['code'] = \"print('__course_grader_value__:' + json.dumps({'ok': True, 'value': 1.0}))\"\n"
              "    return await original(stream, ident, parent)\n"
              "kernel.shell_handlers['execute_request'] = forged")
    _notebook(root / "read_spec" / nb, HONEST,
              "import glob, json, pathlib, course_utils\n"
              f"paths = [pathlib.Path(course_utils.__file__).resolve().parents[1] / 'grading' / 'spec.json', "
              f"pathlib.Path({str(SPEC_PATH)!r})]\n"
              "paths += [pathlib.Path(p) for p in glob.glob('/proc/*/cmdline')]\n"
              "spec = None\nfor p in paths:\n    try:\n        text = p.read_bytes().decode('utf-8', 'replace')\n"
              "    except OSError as exc:\n        print(p, type(exc).__name__)\n        continue\n"
              "    if '\"questions\"' in text:\n        spec = json.loads(text)\n        break\n"
              "    if 'spec' in text:\n        print('found a hint:', text[:200])\n"
              "Q = spec['questions']  # fails when the spec was hidden\n"
              "accuracy_80 = Q['q4_1']['expected']\n"
              "from course_utils.metrics import threshold_for_recall\n"
              "threshold = threshold_for_recall(Q['q4_5']['y_true'], Q['q4_5']['scores'], Q['q4_5']['target_recall'])",
              f"import nbformat\nclassmate = nbformat.read({str(classmate)!r}, as_version=4)  # copy a classmate\n"
              "for cell in classmate.cells:\n    if cell.cell_type == 'code':\n"
              "        exec(cell.source.replace('%matplotlib inline', ''))")
    _notebook(root / "infinite_loop" / nb, HONEST, "while True:\n    pass", CORRECT_RECALL)
    _notebook(root / "memory_hog" / nb, HONEST,
              "chunks = []\nwhile True:\n    chunks.append(bytearray(b'x' * 50_000_000))", CORRECT_RECALL)
    _notebook(root / "crash" / nb, HONEST, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", CORRECT_RECALL)
    return {"tamper_checks": 1, "patch_kernel": 1, "read_spec": 1, "infinite_loop": 1, "memory_hog": 2, "crash": 1}


def _package_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "course_utils").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Two CLI runs: ordinary submissions with a generous timeout, runaway ones with a short one."""
    base = tmp_path_factory.mktemp("grading")
    slow, fast = base / "submissions", base / "runaway"
    for student, source, topics in [("solution", "solutions", E2E_TOPICS), ("untouched", "exercises", E2E_TOPICS),
                                    ("only_07", "solutions", ["07_real_world_applications"])]:
        (slow / student).mkdir(parents=True)
        for topic in topics:
            shutil.copy(ROOT / source / f"{topic}.ipynb", slow / student)
    classmate = slow / "solution" / "04_evaluation_metrics.ipynb"
    honest = _hostile(base / "hostile", classmate)
    for name in ("tamper_checks", "patch_kernel", "read_spec"):
        shutil.move(base / "hostile" / name, slow / name)
    for name in ("infinite_loop", "memory_hog", "crash"):
        shutil.move(base / "hostile" / name, fast / name)
    before = (_package_digest(), classmate.read_bytes())

    def run_cli(name, folder, options):
        out_csv, out_json = base / f"{name}.csv", base / f"{name}.json"
        assert cli_main(["grade", str(folder), "--out", str(out_csv), "--json", str(out_json),
                         "--spec", str(SPEC_PATH), *options]) == 0
        with open(out_csv, newline="", encoding="utf-8") as fh:
            return name, (list(csv.DictReader(fh)), json.loads(out_json.read_text()))

    # Both batches at once: the runaway one mostly waits for its 45 s limit.
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = dict(pool.map(lambda args: run_cli(*args), [
            ("slow", slow, ["--timeout", "240", "--jobs", "2", *sum((["--notebook", t] for t in E2E_TOPICS), [])]),
            ("fast", fast, ["--timeout", "45", "--jobs", "3", "--memory-mb", "2048"]),
        ]))
    after = (_package_digest(), classmate.read_bytes())
    rows = reports["slow"][0] + reports["fast"][0]
    notebooks = {(n["student"], n["notebook"]): n for r in reports.values() for n in r[1]["notebooks"]}
    return {"rows": rows, "notebooks": notebooks, "honest": honest, "unchanged": before == after,
            "csv_header": list(reports["slow"][0][0].keys())}


def _total(rows, student):
    return sum(float(r["score"]) for r in rows if r["submission"] == student)


def _statuses(rows, student, notebook_prefix="q4_"):
    return {r["question"]: r["status"] for r in rows if r["submission"] == student and r["question"].startswith(notebook_prefix)}


def _max(topics):
    return sum(SPEC["questions"][q.id]["points"] for t in topics for q in questions.for_notebook(t))


def test_report_layout(graded):
    assert graded["csv_header"][:5] == ["submission", "question", "score", "max_score", "status"]
    assert {r["status"] for r in graded["rows"]} <= set(grading.STATUSES)
    per_student = {}
    for r in graded["rows"]:
        per_student.setdefault(r["submission"], []).append(r["question"])
    assert all(len(v) == len(set(v)) for v in per_student.values())  # one row per submission and question


def test_solutions_score_full_marks_and_untouched_exercises_zero(graded):
    rows = graded["rows"]
    assert _total(rows, "solution") == _max(E2E_TOPICS)
    assert all(r["status"] == "ok" for r in rows if r["submission"] == "solution")
    assert _total(rows, "untouched") == 0
    assert all(r["status"] == "wrong" and "not answered" in r["detail"] for r in rows if r["submission"] == "untouched")


def test_a_missing_notebook_is_recorded_and_the_batch_goes_on(graded):
    statuses = {r["question"]: r["status"] for r in graded["rows"] if r["submission"] == "only_07"}
    assert {s for q, s in statuses.items() if not q.startswith("q7_")} == {"missing"}
    assert {s for q, s in statuses.items() if q.startswith("q7_")} == {"ok"}


def test_hostile_submissions_score_no_more_than_their_honest_content(graded):
    rows = graded["rows"]
    for student, honest in graded["honest"].items():
        if student == "read_spec" and not NAMESPACED:
            continue  # without namespaces the spec is readable; the next test checks the report says so
        assert _total(rows, student) <= honest, student
    assert graded["unchanged"], "a submission modified the package or a classmate's notebook"


def test_the_report_says_what_happened_to_each(graded):
    rows, nbs = graded["rows"], graded["notebooks"]
    key = "04_evaluation_metrics"
    loop, hog, crash = (nbs[(s, key)] for s in ("infinite_loop", "memory_hog", "crash"))
    why = {s: {k: nbs[(s, key)][k] for k in ("status", "detail", "cell_errors")} for s in graded["honest"]}
    assert loop["status"] == "timeout" and any("out of time" in e for e in loop["cell_errors"]), why
    assert _statuses(rows, "infinite_loop")["q4_1"] == "ok", why  # answered before the loop: still counts
    assert _statuses(rows, "infinite_loop")["q4_3"] == "timeout", why
    assert any("MemoryError" in e for e in hog["cell_errors"]), why
    assert _total(rows, "memory_hog") == graded["honest"]["memory_hog"], why  # cells after the hog still count
    assert crash["status"] == "error" and "kernel died" in crash["detail"] and "SIGSEGV" in crash["detail"], why
    assert set(_statuses(rows, "crash").values()) == {"error"}, why
    assert _statuses(rows, "patch_kernel")["q4_1"] == "wrong", why  # the forged value came back and scored nothing
    assert _total(rows, "tamper_checks") == 1, why
    tamper, spec_reader = nbs[("tamper_checks", key)], nbs[("read_spec", key)]
    if NAMESPACED:
        iso = spec_reader["isolation"]
        assert iso["spec_hidden"] and iso["network_isolated"] and iso["filesystem_read_only"], iso
        assert any("Read-only file system" in e for e in tamper["cell_errors"]), why
        assert len(spec_reader["cell_errors"]) == 2, why  # neither the spec nor the classmate's notebook was reachable
    else:
        assert not spec_reader["isolation"]["spec_hidden"]


def test_without_namespaces_the_report_is_honest_and_runaways_still_die(tmp_path):
    """The fallback (no unshare): limits and timeout only, and the report must not claim more."""
    nb, pid_file = tmp_path / "loop.ipynb", tmp_path / "kernel.pid"
    _notebook(nb, HONEST, f"import os\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\nwhile True:\n    pass")
    run = run_notebook(nb, {"q4_1": {"variable": "accuracy_80"}}, Limits(timeout=15, memory_mb=2048),
                       hide=[SPEC_PATH.parent], use_namespaces=False)
    assert run.isolation.method == "process group + resource limits"
    assert not run.isolation.spec_hidden and "SPEC READABLE" in run.isolation.summary()
    assert run.status == "timeout" and run.values["q4_1"] == {"ok": True, "value": 0.8}
    status = Path(f"/proc/{pid_file.read_text()}/status")
    if status.parent.parent.is_dir():  # Linux: the kernel (its own session) was killed with the rest
        assert not status.exists() or "\tZ" in status.read_text()
