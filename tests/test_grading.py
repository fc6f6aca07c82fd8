"""The grader instructors can trust (issue 10): private spec, confined runs, unforgeable channels.

Fast tests cover the scoring rules (a constant, an identity or a random answer scores zero), the
report's text cleaning, the spec's location and format, variants, feedback and exports. One
module-scoped run grades tests/fixtures/grading/submissions, one folder per attack of issue 10 plus
an honest learner, in the real sandbox (Linux namespaces; skipped where they are unavailable), so
the attacks are shown to score zero or exactly their honest content.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.cli import main as cli_main
from course_utils.errors import ConfigError, DataError
from course_utils.grading import confinement, questions
from course_utils.grading import grade as grading
from course_utils.grading.child import extract_definitions, run_program
from course_utils.grading.sandbox import Job, Limits, namespace_command, parse_messages, run_notebook
from course_utils.grading.submit import ARTEFACTS_ENV, submit_model, variant_data

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading" / "submissions"
NAMESPACED = namespace_command() is not None
CANARY = "cg-canary-" + "ab" * 16
SECRET = "test-secret-2"  # with seeds [7, 11]: honest -> 7, copied -> 11 (the copier typed honest's number)
SEEDS = [7, 11]
COPIED_VALUE = 0.9694  # honest's q7_1 answer for seed 7, as tests/fixtures/grading/build_fixtures.py typed it

sys.path.insert(0, str(ROOT / "grading"))
import build_spec  # noqa: E402  (the instructor tool, outside the package)


def make_spec(folder: Path) -> Path:
    """A spec with real entries for lessons 04 and 07 and q3_4 (fast to build) and placeholders elsewhere."""
    entries = {**build_spec._lesson_04(), **build_spec._lesson_07(SEEDS, SECRET),
               "q3_4": {"floor": questions.TREE_TEST_ACCURACY_FLOOR},
               "q9_5": {"reference": "answer_only_loss", "abs_tol": 1e-4}}
    for q in questions.QUESTIONS:
        entry = entries.setdefault(q.id, {f: "placeholder" for f in grading._REQUIRED[q.kind]})
        entry["points"] = q.points
    spec = {"format": grading.SPEC_FORMAT, "canary": CANARY, "secret": SECRET, "variant_seeds": SEEDS,
            "questions": {q.id: entries[q.id] for q in questions.QUESTIONS}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory) -> Path:
    return make_spec(tmp_path_factory.mktemp("private"))


@pytest.fixture(scope="module")
def spec(spec_path) -> dict:
    return grading.load_spec(spec_path)


def _score(spec, qid, value, seed=7, **extra):
    q = questions.get(qid)
    entry = {**grading.entry_for(spec, q, seed), **extra}
    return grading.score_answer(q, {"ok": True, "value": value}, entry)


# --------------------------------------------------------------------------------------------
# Scoring: partial credit only where a constant, an identity or a random answer scores zero
# --------------------------------------------------------------------------------------------


def test_function_answers_need_every_random_case(spec):
    import random

    rng = random.Random(1)
    cases = grading.function_cases(rng)
    expected = grading.expected_cases("precision_score", cases)
    right = [{"ok": True, "value": v} for v in expected]
    assert _score(spec, "q4_2", right, expected=expected)[:2] == (1.0, "ok")
    constant = [{"ok": True, "value": 1.0}] * len(cases)
    identity = [{"ok": True, "value": float(p[0])} for _, p in cases]
    noise = [{"ok": True, "value": rng.random()} for _ in cases]
    for answer in (constant, identity, noise):
        assert _score(spec, "q4_2", answer, expected=expected)[0] == 0.0
    one_wrong = right[:-1] + [{"ok": False, "error": "ZeroDivisionError"}]
    assert _score(spec, "q4_2", one_wrong, expected=expected)[:2] == (0.0, "wrong")
    # the cases change every run, so a table of outputs from one run is useless in the next
    assert grading.function_cases(random.Random(2)) != cases


def test_the_answer_only_loss_is_graded_on_random_sequences(spec):
    import random

    import torch

    cases = grading.function_cases(random.Random(3), reference="answer_only_loss")
    expected = grading.expected_cases("answer_only_loss", cases)
    for (logits, labels), want in zip(cases, expected):  # the reference is what torch computes
        torch_loss = torch.nn.functional.cross_entropy(torch.tensor(logits[:-1]), torch.tensor(labels[1:]), ignore_index=-100)
        assert want == pytest.approx(torch_loss.item(), abs=1e-5)
    assert sum(label != -100 for label in cases[-1][1]) == 2  # one answer token after the shift
    right = [{"ok": True, "value": v} for v in expected]
    assert _score(spec, "q9_5", right, expected=expected)[:2] == (questions.get("q9_5").points, "ok")

    def loss(logits, labels, shift=True, mask=True):
        logits, labels = torch.tensor(logits), torch.tensor(labels)
        if shift:
            logits, labels = logits[:-1], labels[1:]
        if not mask:
            labels = labels.clamp(min=0)
        return torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100).item()

    for slip in (dict(shift=False), dict(mask=False)):
        answer = [{"ok": True, "value": loss(*case, **slip)} for case in cases]
        assert _score(spec, "q9_5", answer, expected=expected)[0] == 0.0, slip
    with pytest.raises(ConfigError, match="unknown reference"):
        grading.expected_cases("placeholder", cases)


def test_cheap_answers_score_zero(spec):
    assert _score(spec, "q4_5", 0.0)[0] == 0.0  # flags everyone: recall met, precision not
    assert _score(spec, "q4_5", 1.01)[0] == 0.0
    best = build_spec._lesson_04()["q4_5"]
    from course_utils.metrics import threshold_for_recall

    assert _score(spec, "q4_5", threshold_for_recall(best["y_true"], best["scores"], 0.95))[:2] == (2.0, "ok")
    assert _score(spec, "q7_1", 1.0)[0] == 0.0 and _score(spec, "q7_1", 0.5)[0] == 0.0
    assert _score(spec, "q7_1", COPIED_VALUE, seed=7)[1] == "ok"
    assert _score(spec, "q7_1", COPIED_VALUE, seed=11)[1] == "wrong"


def test_params_have_no_half_marks_for_any_grid_point():
    entry = {"expected": {"criterion": "gini", "max_depth": 10, "min_samples_split": 2}, "grid": questions.TREE_GRID}
    q = questions.get("q3_3")
    assert grading.score_answer(q, {"ok": True, "value": dict(entry["expected"])}, entry)[:2] == (2.0, "ok")
    other = {"criterion": "entropy", "max_depth": 20, "min_samples_split": 10}
    assert grading.score_answer(q, {"ok": True, "value": other}, entry)[0] == 0.0


def test_free_text_is_left_to_a_person(spec):
    junk = {"task": "a a a a a a", "data": [{"type": "a", "source": "a a"}] * 3}
    score, status, detail = _score(spec, "q2_1", junk)
    assert (score, status) == (0.0, "manual") and "a person" in detail


def test_artefact_scores_come_from_predictions_not_claims(spec):
    labels = grading.EVALUATION_SETS["fraud_test"](spec, 7).labels
    entry = {"floor": grading.entry_for(spec, questions.get("q7_2"), 7)["floor"], "labels": labels}
    q = questions.get("q7_2")
    constant = [0.5] * len(labels)
    assert grading.score_answer(q, {"ok": True, "value": constant}, entry)[0] == 0.0
    import random

    noise = [random.random() for _ in labels]
    assert grading.score_answer(q, {"ok": True, "value": noise}, entry)[0] == 0.0
    perfect = [float(y) for y in labels]
    assert grading.score_answer(q, {"ok": True, "value": perfect}, entry)[:2] == (1.0, "ok")
    assert grading.score_answer(q, {"ok": True, "value": perfect[:-1]}, entry)[0] == 0.0
    # a number the notebook states is not even collected for this question
    assert "q7_2" not in grading.plan_job("07_real_world_applications", spec, 7, random.Random(0),
                                          grading.EvaluationCache(spec))[0].values


def test_a_course_installed_under_tmp_is_bound_on_top_of_the_private_tmp(monkeypatch):
    """The private /tmp is mounted first, so a venv under /tmp stays visible (read-only) in the sandbox."""
    venv = Path("/tmp/learners-course/.venv")
    monkeypatch.setattr(confinement, "exposed_paths", lambda: [venv])
    script = confinement.setup_script(Path("/tmp/cg-root"), Path("/tmp/cg-work"), Path("/tmp/nb.ipynb"),
                                      ["python", "-c", "pass"], as_root=False, scratch_mb=64)
    private_tmp = script.index("cgtmp")
    bind = script.index(f"mount --rbind {venv}")
    assert private_tmp < bind < script.index(f"mount -o remount,bind,ro /tmp/cg-root{venv}")


def test_a_lora_question_refuses_a_model_that_trains_all_its_weights():
    """q8_4 (issue 11 section 4): good predictions are not enough; the grader counts trainable weights."""
    q = questions.get("q8_4")
    labels = ["negative", "positive"] * 50
    entry = {"floor": 0.7, "max_trainable_share": questions.LORA_MAX_TRAINABLE_SHARE, "labels": labels}
    perfect = list(labels)
    assert grading.score_answer(q, {"ok": True, "value": perfect, "trainable_share": 0.003}, entry)[:2] == (2.0, "ok")
    score, status, detail = grading.score_answer(q, {"ok": True, "value": perfect, "trainable_share": 1.0}, entry)
    assert (score, status) == (0.0, "wrong") and "100.00% of the model's weights" in detail
    score, _, detail = grading.score_answer(q, {"ok": True, "value": perfect}, entry)  # nothing counted
    assert score == 0.0 and "could not count" in detail
    low = ["negative"] * len(labels)  # parameter-efficient, but no better than the majority class
    assert grading.score_answer(q, {"ok": True, "value": low, "trainable_share": 0.003}, entry)[0] == 0.0


@pytest.mark.slow
def test_the_artefact_runner_counts_the_adapter_and_refuses_a_full_model(tmp_path, monkeypatch):
    """q8_4: the grader counts the adapter file's weights itself and predicts with its own code."""
    from peft import LoraConfig, TaskType, get_peft_model

    from course_utils.models import load_pretrained

    _, base = load_pretrained(labels=["negative", "positive"])
    lora = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, lora_dropout=0.0, **questions.LORA_EXERCISE))
    monkeypatch.setenv(ARTEFACTS_ENV, str(tmp_path))
    folder = submit_model("q8_4", lora)
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json", "adapter_model.safetensors", "grading.json"]
    job = {"folder": str(folder), "method": "predict_texts", "inputs": ["good", "bad", "fine"], "formats": ["peft"]}
    result = run_program("course_utils.grading.runners.artefact", job, 120)
    assert result["ok"], result
    assert len(result["value"]) == 3 and set(result["value"]) <= {"negative", "positive"}
    assert 0.001 < result["trainable_share"] < 0.02  # r=8 on query and value, plus the head
    full = submit_model("q5_1", lora.merge_and_unload())  # a fully fine-tuned model is not an adapter
    refused = run_program("course_utils.grading.runners.artefact", {**job, "folder": str(full)}, 120)
    assert not refused["ok"] and "needs a peft model" in refused["error"]


def test_model_files_from_a_submission_are_checked_before_loading(tmp_path):
    """A pickle, a link or a notebook-defined class in the model folder refuses the model by name."""
    from course_utils.grading import artefacts

    folder = tmp_path / "q7_2"
    folder.mkdir()
    (folder / "grading.json").write_text('{"format": "sklearn"}')
    (folder / "model.pkl").write_bytes(b"not read")
    with pytest.raises(artefacts.ArtefactRefused, match="must consist of"):
        artefacts.read_meta(folder)
    (folder / "model.pkl").unlink()
    (folder / "model.skops").symlink_to("/etc/passwd")
    with pytest.raises(artefacts.ArtefactRefused, match="not a plain file"):
        artefacts.read_meta(folder)
    assert artefacts.untrusted_types(["sklearn.tree._tree.Tree", "builtins.eval", "__main__.Mine",
                                      "sklearn.utils.validation.check_array"]) == [
        "builtins.eval", "__main__.Mine", "sklearn.utils.validation.check_array"]


def test_the_result_channel_voids_a_run_with_a_second_or_foreign_message():
    iso = b'{"isolation": {"non_root": true}}\n'
    result = b'{"result": {"status": "ok", "values": {}}}\n'
    assert parse_messages(iso + result)[1] == ""
    for tampered in (iso + result + result, iso + b"hello\n" + result, result + iso,
                     iso + b'{"result": {}, "isolation": {}}\n', iso + b'{"values": {}}\n'):
        merged, problem = parse_messages(tampered)
        assert problem, tampered
        assert merged["isolation"] == {"non_root": True} or tampered.startswith(result)


def test_fraud_evaluation_rows_keep_the_process_and_need_the_secret(spec):
    """Rows from the learner's fraud process, drawn with the spec's secret: same problem, new rows."""
    import numpy as np

    from course_utils.grading.evaluation import fraud_rows
    from course_utils.labs.applications import make_fraud_data

    mine = make_fraud_data(**variant_data("fraud", 7))
    same = make_fraud_data(**variant_data("fraud", 7), sample_seed=7)
    assert np.array_equal(mine.X_train, same.X_train)  # sample_seed == seed is the plain call
    X, y = fraud_rows(spec, 7)
    X_other, _ = fraud_rows(dict(spec, secret="another"), 7)
    assert not np.isclose(X[:50], X_other[:50]).all()
    assert not any(np.isclose(mine.X_test, row).all(axis=1).any() for row in X[:200])


# --------------------------------------------------------------------------------------------
# Report safety
# --------------------------------------------------------------------------------------------


def test_text_from_a_submission_cannot_become_a_formula_a_row_or_a_megabyte(tmp_path):
    hostile = "=cmd|' /C calc'!A0\nbob,q4_1,1,1,ok,\r\n\x1b[31m" + "x" * 200_000
    assert grading.clean_text(hostile).startswith("'=cmd")
    assert len(grading.clean_text(hostile)) <= grading.DETAIL_LIMIT + 1
    for lead in "=+-@":
        assert grading.clean_text(lead + "1+1").startswith("'")
        assert grading.clean_text("\t \n" + lead + "1+1").startswith("'")  # stripped first, then escaped
    assert grading.clean_text("plain text") == "plain text"
    report = grading.NotebookReport("=evil\nname", "04_evaluation_metrics", "ok", "", 0.0, None, [],
                                    [grading.Row("=evil\nname", "q4_1", 0.0, 1.0, "error", hostile)])
    out = tmp_path / "r.csv"
    grading.write_csv([report], out)
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert len(rows) == 2 and rows[1][0].startswith("'") and rows[1][5].startswith("'=cmd")
    assert len(rows[1][5]) <= grading.DETAIL_LIMIT + 1 and "\n" not in rows[1][5] and "\x1b" not in rows[1][5]


def test_feedback_and_exports(tmp_path, spec):
    rows = [grading.Row("ann@uni.edu", "q7_1", 0.0, 1.0, "wrong", "0.5 is not the expected value"),
            grading.Row("ann@uni.edu", "q2_1", 0.0, 2.0, "manual", "to be scored by a person: {}")]
    report = grading.NotebookReport("ann@uni.edu", "07_real_world_applications", "ok", "", 1.0, None, [], rows)
    [path] = grading.write_feedback([report], tmp_path / "fb")
    text = path.read_text(encoding="utf-8")
    assert "q7_1" in text and questions.get("q7_1").hint[:30] in text and "0 / 3" in text
    assert "0.989" not in text  # never an expected value
    grading.write_totals([report], tmp_path / "g.csv", "gradescope")
    assert list(csv.reader((tmp_path / "g.csv").open())) == [["Email", "Total Score"], ["ann@uni.edu", "0"]]
    grading.write_totals([report], tmp_path / "c.csv", "canvas", "Week 7")
    canvas = list(csv.reader((tmp_path / "c.csv").open()))
    assert canvas[0][-1] == "Week 7 (3)" and canvas[2][3] == "ann@uni.edu"
    with pytest.raises(ConfigError, match="unknown export format"):
        grading.write_totals([report], tmp_path / "x.csv", "excel")


# --------------------------------------------------------------------------------------------
# The spec: private, regenerated, validated
# --------------------------------------------------------------------------------------------


def test_no_spec_in_the_repository_and_the_builder_refuses_to_write_one_there():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert not [p for p in tracked if p.endswith("spec.json")]
    assert build_spec.main(["--out", str(ROOT / "grading")]) == 2
    assert build_spec.main(["--out", str(ROOT)]) == 2


def test_spec_problems_are_clear_errors(tmp_path, spec_path):
    with pytest.raises(ConfigError, match="--spec"):
        grading.load_spec(None)
    with pytest.raises(ConfigError, match="not found"):
        grading.load_spec(tmp_path / "nope.json")
    old = json.loads(spec_path.read_text())
    old["format"] = 1
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(ConfigError, match="older grader"):
        grading.load_spec(tmp_path / "old.json")
    broken = json.loads(spec_path.read_text())
    del broken["questions"]["q4_5"]["target_recall"]
    (tmp_path / "a.json").write_text(json.dumps(broken))
    with pytest.raises(ConfigError, match=r"q4_5.*target_recall"):
        grading.load_spec(tmp_path / "a.json")
    with pytest.raises(ConfigError, match="every submission can read"):
        grading.check_spec_location(ROOT / "course_utils" / "spec.json")


def test_two_learners_get_different_variants_and_answers(spec):
    assert grading.learner_seed(spec, "honest") == 7 and grading.learner_seed(spec, "copied") == 11
    q71 = questions.get("q7_1")
    assert grading.entry_for(spec, q71, 7)["expected"] == COPIED_VALUE
    assert grading.entry_for(spec, q71, 11)["expected"] != grading.entry_for(spec, q71, 7)["expected"]
    assert grading.EVALUATION_SETS["fraud_test"](spec, 11).labels != grading.EVALUATION_SETS["fraud_test"](spec, 7).labels
    assert variant_data("fraud") == {"seed": 0}  # no grader: the solutions' data, so check() still works
    other = dict(spec, secret="another-secret")
    assert any(grading.learner_seed(other, f"l{i}") != grading.learner_seed(spec, f"l{i}") for i in range(20))


def test_the_pool_leaves_out_the_solutions_seed_and_shared_answers(spec_path, tmp_path):
    """Issue 20 item 6: seed 0 (the published solutions' data) never grades anyone, and no two seeds share an answer."""
    with pytest.raises(ValueError, match="seed 0"):
        build_spec.build(seeds=[0, 7])
    clash = {"q7_1": {"variants": {"5": {"expected": 0.97}, "9": {"expected": 0.97}, "12": {"expected": 0.98}}},
             "q6_1": {"variants": {"5": {"expected": 20}, "9": {"expected": 20}}}}  # tolerance-scored: may coincide
    assert build_spec.shared_answers(clash) == ["q7_1: seeds 5 and 9 share the answer 0.97"]
    assert build_spec.shared_answers(build_spec._lesson_07(SEEDS, SECRET)) == []
    with_zero = json.loads(spec_path.read_text())
    with_zero["variant_seeds"] = [0, 7]
    (tmp_path / "zero.json").write_text(json.dumps(with_zero))
    with pytest.raises(ConfigError, match="without 0"):
        grading.load_spec(tmp_path / "zero.json")
    rates = {variant_data("fraud", seed)["fraud_rate"] for seed in range(1, 41)}
    assert len(rates) > 30  # spread over 200 rates by a hash of the seed (seed % 9 gave 9)


def test_the_fallback_refuses_by_default(monkeypatch, spec_path, tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "04_evaluation_metrics.ipynb").write_text("{}")
    from course_utils.grading import batch

    monkeypatch.setattr(batch, "namespace_command", lambda: None)
    with pytest.raises(ConfigError, match="--allow-unisolated"):
        grading.grade(tmp_path, spec_path, notebooks=["04_evaluation_metrics"])


def test_submission_folder_problems_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        grading.find_submissions(tmp_path / "missing")
    with pytest.raises(DataError, match="no student folders"):
        grading.find_submissions(tmp_path)


def test_grade_help_and_limits(capsys):
    with pytest.raises(SystemExit):
        cli_main(["grade", "--help"])
    out = capsys.readouterr().out
    for words in ("SUBMISSIONS_DIR", "--spec", "--allow-unisolated", "--feedback", "--format", "build_spec.py"):
        assert words in out
    with pytest.raises(ConfigError):
        Limits(timeout=0)
    with pytest.raises(ConfigError):
        Limits(max_processes=0)


# --------------------------------------------------------------------------------------------
# The pieces the sandbox uses
# --------------------------------------------------------------------------------------------


def test_submit_model(monkeypatch, tmp_path, capsys):
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier().fit([[0], [1]], [0, 1])
    monkeypatch.delenv(ARTEFACTS_ENV, raising=False)
    assert submit_model("q7_2", model) is None and "ready for grading" in capsys.readouterr().out
    assert submit_model("q7_2", None) is None
    monkeypatch.setenv(ARTEFACTS_ENV, str(tmp_path))
    folder = submit_model("q7_2", model)
    assert folder == tmp_path / "q7_2" and sorted(p.name for p in folder.iterdir()) == ["grading.json", "model.skops"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing half-written left beside it
    with pytest.raises(ConfigError, match="not answered with a model"):
        submit_model("q7_1", model)
    with pytest.raises(ConfigError, match="cannot submit a float"):
        submit_model("q7_2", 0.93)

    class Mine(DummyClassifier):  # a class of the notebook's: the grader would not load it
        pass

    with pytest.raises(ConfigError, match="Mine"):
        submit_model("q7_2", Mine().fit([[0], [1]], [0, 1]))


def test_function_source_leaves_out_statements(tmp_path):
    nb = new_notebook(cells=[new_code_cell("%matplotlib inline\nimport numpy as np\nget_ipython().events.register('x', print)"),
                             new_code_cell("EPS = 1e-12\ndata = load()\ndef f(y):\n    return 1\n"
                                           "print('side effect')\nclass A:\n    pass")])
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, str(path))
    source = extract_definitions(path)
    assert "import numpy as np" in source and "def f(y)" in source and "class A" in source
    assert "EPS = 1e-12" in source
    assert "register" not in source and "side effect" not in source and "load()" not in source


@pytest.mark.skipif(not NAMESPACED, reason="needs Linux namespaces (unshare -r)")
def test_the_canary_probe_can_fail(tmp_path):
    """The isolation record is measured: a canary the child can read flips spec_hidden to False."""
    nb = new_notebook(cells=[new_markdown_cell(f"leaked: {CANARY}"), new_code_cell("x = 1")])
    path = tmp_path / "leak.ipynb"
    nbformat.write(nb, str(path))
    job = Job(values={"x": "x"}, canary_sha256=hashlib.sha256(CANARY.encode()).hexdigest())
    run = run_notebook(path, job, Limits(timeout=60))
    assert run.values["x"] == {"ok": True, "value": 1}
    assert run.isolation.spec_hidden is False and "canary" in " ".join(run.isolation.notes)
    assert run.isolation.non_root and run.isolation.proc_sys_read_only and run.isolation.network_isolated


# --------------------------------------------------------------------------------------------
# End to end: every attack of issue 10 as a real submission, graded in the real sandbox
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded(tmp_path_factory, spec_path):
    if not NAMESPACED:
        pytest.skip("needs Linux namespaces (unshare -r)")
    out = tmp_path_factory.mktemp("report")
    code = cli_main(["grade", str(FIXTURES), "--spec", str(spec_path), "--out", str(out / "report.csv"),
                     "--json", str(out / "report.json"), "--feedback", str(out / "feedback"),
                     "--totals", str(out / "totals.csv"), "--timeout", "120"])
    assert code == 0
    return out


EXPECTED_TOTALS = {
    "honest": 10.0,             # everything of 04 and 07 on its own variant (seed 7), and q3_4 (03's other answers are not in it)
    "lazy-liar": 2.0,           # q4_1 (0.8 is the question's own arithmetic) and q7_3 (a choice): its honest content
    "copied": 1.0,              # q7_3 only: honest's q7_1 number is wrong for the copier's variant
    "git-history-reader": 0.0,  # no .git, no spec, nothing of the host in its file system
    "forger": 0.0,              # fake marker lines and patched print change nothing
    "injector": 0.0,
    "hijacker": 0.0,            # modules planted for the grader's interpreters are never imported
    "lookup": 0.0,              # a 1-NN table of its own fraud rows, and a tree fitted on the test rows
    "reducer": 0.0,             # a pickle and a notebook-defined class in the model folder are refused, never run
    "ipc-a-writer": 0.0,
    "ipc-b-reader": 0.0,        # answers only if it finds what ipc-a-writer left: it finds nothing
}
GRADED_NOTEBOOKS = ("03_hyperparameter_tuning", "04_evaluation_metrics", "07_real_world_applications")


def test_each_attack_scores_zero_or_its_honest_content(graded):
    data = json.loads((graded / "report.json").read_text())
    got = {name: t["score"] for name, t in data["totals"].items()}
    assert got == EXPECTED_TOTALS
    assert data["totals"]["honest"]["max_score"] == sum(q.points for n in GRADED_NOTEBOOKS for q in questions.for_notebook(n))
    rows = {(r["submission"], r["question"]): r for n in data["notebooks"] for r in n["rows"]}
    assert "refused" in rows[("reducer", "q7_2")]["detail"] and "Sneaky" in rows[("reducer", "q7_2")]["detail"]
    assert "fitted on 569 rows" in rows[("lookup", "q3_4")]["detail"]  # every breast-cancer row, not the 341 of train
    assert "public evaluation data" in rows[("honest", "q3_4")]["detail"]
    assert "public" not in rows[("honest", "q7_2")]["detail"]  # fraud rows come from the spec's secret


def test_nothing_of_the_batch_is_left_on_the_host(graded):
    """SysV and POSIX IPC objects die with each run's IPC namespace; cgroups and scratch folders are removed."""
    key = 0x5EED
    for table in ("/proc/sysvipc/shm", "/proc/sysvipc/msg"):
        if Path(table).exists():
            keys = [int(line.split()[0]) for line in Path(table).read_text().splitlines()[1:] if line.split()]
            assert key not in keys, table
    assert not Path("/dev/mqueue/course-leak").exists()
    for controller in ("memory", "pids", "cpu"):
        parent = confinement._v1_parent(controller)
        if parent is not None:
            assert not list(parent.glob("course-grader-*")), controller
    assert not Path("/tmp/pwned").exists()


def test_the_isolation_record_is_measured(graded):
    data = json.loads((graded / "report.json").read_text())
    assert data["unisolated_allowed"] is False and data["isolated"] is True
    runs = [n for n in data["notebooks"] if n["isolation"]]
    assert len(runs) == len(list(FIXTURES.glob("*/*.ipynb")))  # missing notebooks have no run
    for n in runs:
        iso = n["isolation"]
        assert iso["spec_hidden"] and iso["network_isolated"] and iso["non_root"], n["student"]
        assert iso["proc_sys_read_only"] and iso["filesystem_read_only"] and iso["private_tmp"], n["student"]
        assert iso["ipc_isolated"] and {"ipc", "uts", "net", "pid", "mnt"} <= set(iso["namespaces"]), n["student"]
        if confinement._v1_parent("memory") is not None or confinement._v2_root() is not None:
            assert {"memory", "processes"} <= set(iso["cgroup_limits"]), n["student"]


def test_the_report_is_safe_to_open(graded):
    rows = list(csv.reader((graded / "report.csv").open(encoding="utf-8")))
    per_learner = sum(len(questions.for_notebook(n)) for n in GRADED_NOTEBOOKS)
    assert rows[0] == list(grading.CSV_COLUMNS) and len(rows) == 1 + len(EXPECTED_TOTALS) * per_learner
    for row in rows[1:]:
        assert len(row) == 6 and len(row[5]) <= grading.DETAIL_LIMIT + 1
        assert row[5][:1] not in "=+-@\t" or row[5] == ""
    injector = [r for r in rows if r[0] == "injector" and r[1] == "q4_2"][0]
    assert injector[4] == "error" and "=cmd" in injector[5] and "\n" not in injector[5]


def test_feedback_shows_no_expected_value(graded):
    files = sorted(p.name for p in (graded / "feedback").glob("*.md"))
    assert files == sorted(f"{name}.md" for name in EXPECTED_TOTALS)
    copied = (graded / "feedback" / "copied.md").read_text(encoding="utf-8")
    expected = build_spec._lesson_07(SEEDS, SECRET)["q7_1"]["variants"]["11"]["expected"]  # the copier's own answer
    assert "q7_1" in copied and f"{expected:.4g}" not in copied and str(expected) not in copied
    totals = list(csv.reader((graded / "totals.csv").open()))
    assert totals[0] == ["learner", "score", "max_score", "manual_pending"] and len(totals) == 1 + len(EXPECTED_TOTALS)


@pytest.mark.skipif(not NAMESPACED, reason="needs Linux namespaces (unshare -r)")
def test_a_symlinked_submission_is_refused_without_running(tmp_path, spec_path):
    (tmp_path / "eve").mkdir()
    (tmp_path / "eve" / "04_evaluation_metrics.ipynb").symlink_to(spec_path)
    [report] = grading.grade(tmp_path, spec_path, notebooks=["04_evaluation_metrics"])
    assert report.status == "refused" and {r.status for r in report.rows} == {"refused"}
    assert all("symbolic link" in r.detail for r in report.rows) and report.isolation is None


@pytest.mark.skipif(not NAMESPACED, reason="needs Linux namespaces (unshare -r)")
def test_the_report_keeps_every_folder_apart(tmp_path, spec_path):
    """Issue 20 item 6: links, hidden folders, files and names that clean to the same text."""
    nb = new_notebook(cells=[new_code_cell("accuracy_80 = 0.8")])
    for name in ("bob\n", "bob "):
        (tmp_path / name).mkdir()
        nbformat.write(nb, str(tmp_path / name / "04_evaluation_metrics.ipynb"))
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "bob ")
    (tmp_path / "notes.txt").write_text("not a learner")
    batch = grading.grade(tmp_path, spec_path, notebooks=["04_evaluation_metrics"])
    ids = [r.student for r in batch]
    assert sorted(ids) == ["alias", "bob", "bob (2)"]
    alias = next(r for r in batch if r.student == "alias")
    assert alias.status == "refused" and alias.isolation is None and "symbolic link" in alias.rows[0].detail
    assert any(".hidden" in line for line in batch.skipped) and any("notes.txt" in line for line in batch.skipped)
    assert len(batch.collisions) == 1
    assert grading.totals(batch)["bob"]["score"] == grading.totals(batch)["bob (2)"]["score"] == 1.0
    files = grading.write_feedback(batch, tmp_path.parent / "fb-apart")
    assert len({f.name for f in files}) == 3
    grading.write_json(batch, tmp_path.parent / "apart.json", Limits())
    data = json.loads((tmp_path.parent / "apart.json").read_text())
    assert data["isolated"] is True and len(data["skipped"]) == 2  # the refused link started no run


@pytest.mark.skipif(not NAMESPACED or os.geteuid() != 0, reason="needs namespaces and cgroups (root)")
def test_caps_hold_for_the_whole_run(tmp_path):
    """Memory and processes are capped for the run, not per process; the scratch folder is size-capped."""
    cells = [
        "import subprocess, sys\nhogs = [subprocess.Popen([sys.executable, '-c', "
        "'b = bytearray(450 * 2**20); import time; time.sleep(4)']) for _ in range(3)]\n"
        "killed = sum(p.wait() == -9 for p in hogs)",
        "procs = []\ntry:\n    for _ in range(500):\n        procs.append(subprocess.Popen(['sleep', '5']))\n"
        "except OSError:\n    pass\nstarted = len(procs)\nfor p in procs:\n    p.kill()",
        "import os\nwritten = 0\ntry:\n    with open(os.path.join(os.environ['HOME'], 'big'), 'wb') as fh:\n"
        "        for _ in range(64):\n            fh.write(b'x' * 2**20)\n            fh.flush()\n            written += 2**20\n"
        "except OSError:\n    pass",
    ]
    path = tmp_path / "hog.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), str(path))
    run = run_notebook(path, Job(values={"killed": "killed", "started": "started", "written": "written"}),
                       Limits(timeout=90, memory_mb=1024, max_processes=64, scratch_mb=16))
    assert run.values["killed"]["value"] >= 1, run  # three 450 MB processes do not fit in 1 GB together
    assert run.values["started"]["value"] < 64, run
    assert run.values["written"]["value"] <= 16 * 2**20, run
    assert {"memory", "processes"} <= set(run.isolation.cgroup_limits)


def test_the_unisolated_fallback_says_so(tmp_path):
    nb = new_notebook(cells=[new_code_cell("x = 2")])
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, str(path))
    run = run_notebook(path, Job(values={"x": "x"}), Limits(timeout=60), use_namespaces=False)
    assert run.values["x"] == {"ok": True, "value": 2}
    assert run.isolation.method.startswith("UNISOLATED") and not run.isolation.spec_hidden
    assert any("not searched" in note for note in run.isolation.notes)   # said, not measured for seconds


def _user_namespaces() -> bool:
    try:
        return subprocess.run(["unshare", "-Ur", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _user_namespaces(), reason="needs unprivileged user namespaces (unshare -Ur)")
def test_the_user_namespace_route_confines_the_same_way(tmp_path, monkeypatch):
    """The route an unprivileged grader takes: a user namespace, then a nested one mapping to a non-root uid."""
    monkeypatch.setitem(confinement._PROBE_CACHE, "cmd", ["unshare", "--user", "--map-root-user", *confinement.NAMESPACE_FLAGS])
    nb = new_notebook(cells=[new_code_cell("import os\nuid = os.getuid()\nshm = os.listdir('/dev/shm')")])
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, str(path))
    run = run_notebook(path, Job(values={"uid": "uid", "shm": "shm"}, canary_sha256="0" * 64), Limits(timeout=60))
    assert run.values["uid"] == {"ok": True, "value": 65534} and run.values["shm"] == {"ok": True, "value": []}
    iso = run.isolation
    assert iso.method.startswith("namespaces") and iso.non_root and iso.proc_sys_read_only and iso.private_tmp
