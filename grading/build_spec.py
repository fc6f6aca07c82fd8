"""Generate the private grading spec from reference runs, into a folder OUTSIDE the course checkout.

Instructor tool, deliberately outside the installed package and left out of `course-utils release`:
the spec holds the expected answers. Run it from the course checkout:

    python grading/build_spec.py --out ~/course-private            # writes ~/course-private/spec.json
    python grading/build_spec.py --out ~/course-private --check    # exit 1 if its answers are stale

Each build draws a new random canary (the sandbox's probe looks for it), a new secret (it keys each
learner's variant and the private fraud rows) and a new pool of variant seeds (never seed 0, the
solutions' data; no two of them sharing an answer): the varied questions' answers of any older
spec, including the one once committed to this repository's history, are worthless for grading.

Expected values come from the library and scikit-learn directly, not from executing the solution
notebooks, so "every solution scores full marks" (tests/test_grading.py) is a real cross-check
between two routes to the same answer. Tolerances are set here, next to the reason for each.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import secrets
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from course_utils.files import atomic_write  # noqa: E402
from course_utils.grading import questions as Q  # noqa: E402


def _lesson_01() -> dict:
    from course_utils.labs.transfer import TransferConfig, compare_strategies, make_digit_tasks, pretrain

    config = TransferConfig()
    tasks = make_digit_tasks(labels_per_class=5)
    pretrained = pretrain(tasks, config)
    frozen = copy.deepcopy(pretrained[0])
    frozen.replace_head(len(tasks.new_classes))
    frozen.freeze_body()
    trainable = sum(p.numel() for p in frozen.parameters() if p.requires_grad)
    runs = compare_strategies(tasks, config, strategies=("from scratch", "fine-tune (small lr)"), pretrained=pretrained).runs
    accuracy = {name: run.final("new_task_acc") for name, run in runs.items()}
    return {
        "q1_1": {"expected": trainable},
        # Hundreds of test digits: another CPU's float rounding may flip a prediction or two.
        "q1_2": {"expected": accuracy, "abs_tol": 0.03},
        "q1_3": {"expected": accuracy["fine-tune (small lr)"] > accuracy["from scratch"]},
        "q1_4": {"expected": ["a", "d"]},
    }


def _lesson_02() -> dict:
    from course_utils.data import clean_tweets, load_tweets

    _, reports = clean_tweets(load_tweets())
    removed = [r.rows_removed for r in reports if r.step.startswith("drop_duplicates")]
    return {
        "q2_1": {"min_task_words": Q.TASK_MIN_WORDS, "min_source_words": Q.DATA_SOURCES_MIN_WORDS},
        "q2_2": {"expected": removed[0]},
        "q2_3": {"variants": {}},  # per seed: variant_answers
    }


def _lesson_03() -> dict:
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    from course_utils.labs.applications import load_breast_cancer_splits
    from course_utils.labs.practice import describe_loss_curve, lr_experiment

    curves = {lr: lr_experiment(lr) for lr in (0.01, 0.1)}
    data = load_breast_cancer_splits(seed=0)
    search = GridSearchCV(DecisionTreeClassifier(random_state=0), Q.TREE_GRID, cv=5).fit(data.X_train, data.y_train)
    return {
        # Adam at lr=0.1 oscillates, so its last value is sensitive to float rounding: a loose tolerance.
        "q3_1": {"expected": {str(lr): c[-1] for lr, c in curves.items()}, "rel_tol": 0.25, "abs_tol": 0.002},
        "q3_2": {"expected": describe_loss_curve(curves[0.1])},
        "q3_3": {"expected": search.best_params_, "grid": Q.TREE_GRID},
        # Scored from the submitted tree's predictions on X_test; the labels stay with the grader.
        "q3_4": {"floor": Q.TREE_TEST_ACCURACY_FLOOR,
                 "reference": search.best_estimator_.score(data.X_test, data.y_test)},
    }


def _lesson_04() -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from course_utils.labs.applications import load_breast_cancer_splits
    from course_utils.metrics import metrics_at_threshold, threshold_for_recall

    data = load_breast_cancer_splits(seed=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(data.X_train, data.y_train)
    scores = model.predict_proba(data.X_val)[:, 1]
    best = metrics_at_threshold(data.y_val, scores, threshold_for_recall(data.y_val, scores, Q.TARGET_RECALL))
    return {
        "q4_1": {"expected": 0.8},
        # Function answers: called on random cases drawn per run; the grader compares with scikit-learn.
        "q4_2": {"reference": "precision_score", "abs_tol": 1e-9},
        "q4_3": {"reference": "recall_score", "abs_tol": 1e-9},
        "q4_4": {"reference": "f1_score", "abs_tol": 1e-9},
        # Scored by the recall and precision the learner's threshold gives on these validation scores.
        "q4_5": {"y_true": data.y_val.astype(int).tolist(), "scores": scores.tolist(),
                 "target_recall": Q.TARGET_RECALL, "min_precision": best["precision"]},
    }


def _lesson_05() -> dict:
    from course_utils.grading.evaluation import tweets_test_frame

    # Fine-tuning is not bit-reproducible across machines: the submitted model's macro-F1 on the
    # grader's test tweets must reach the stated floor. The test-set size is a count, scored exactly.
    return {
        "q5_1": {"floor": Q.BERT_MACRO_F1_FLOOR},
        "q5_2": {"expected": len(tweets_test_frame())},
    }


def _lesson_06() -> dict:
    # The validation curve is flat near its minimum, so neighbouring epochs are as good an answer; the loss
    # of a small MLP differs in its last digits between CPUs. The values per seed: variant_answers.
    return {"q6_1": {"abs_tol": 3, "variants": {}}, "q6_2": {"rel_tol": 0.05, "variants": {}},
            "q6_3": {"abs_tol": 1e-6, "variants": {}}}


_RAW_TWEETS: list = []


def variant_answers(seed: int, secret: str, lessons: tuple[str, ...] = ("02", "06", "07")) -> dict:
    """The answers of every varied question for one seed: {question id: fields of its variant}.

    Each comes from the same call the exercise makes with ``variant_data(..., seed)``. The fraud model's
    floor is the stated 0.80, or 90% of what the reference model reaches on the grader's rows (drawn
    from the learner's process with the spec's secret, evaluation.fraud_rows) for a harder variant.
    """
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    from course_utils.data import check_leakage, load_tweets, split_dataset
    from course_utils.grading.evaluation import fraud_rows
    from course_utils.grading.variants import variant_data
    from course_utils.labs.applications import make_fraud_data
    from course_utils.labs.overfitting import MLPConfig, load_digits_splits, train_mlp

    out = {}
    if "07" in lessons:
        fraud = make_fraud_data(**variant_data("fraud", seed))
        out["q7_1"] = {"expected": float((fraud.y_test == 0).mean())}
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(fraud.X_train, fraud.y_train)
        X, y = fraud_rows({"secret": secret}, seed)
        reference = float(average_precision_score(y, model.predict_proba(X)[:, 1]))
        out["q7_2"] = {"floor": min(Q.FRAUD_AP_FLOOR, round(0.9 * reference, 4)), "reference": reference}
    if "02" in lessons:
        if not _RAW_TWEETS:
            _RAW_TWEETS.append(load_tweets())
        splits = split_dataset(_RAW_TWEETS[0], **variant_data("splits", seed))
        out["q2_3"] = {"expected": check_leakage(splits).n_pairs}
    if "06" in lessons:
        digits = load_digits_splits(n_train=200, n_val=400, **variant_data("digits", seed))
        _, history = train_mlp(digits.X_train, digits.y_train, digits.X_val, digits.y_val, MLPConfig(epochs=60))
        best = int(np.argmin(history.val_loss)) + 1
        out["q6_1"] = {"expected": best}
        out["q6_2"] = {"expected": history.val_loss[best - 1]}
        X_wine, y_wine = load_wine(return_X_y=True)
        tree = DecisionTreeClassifier(random_state=0)
        out["q6_3"] = {"expected": float(cross_val_score(tree, X_wine, y_wine, **variant_data("cv", seed)).mean())}
    return out


# Varied answers that are scored exactly: two seeds of a pool must not share one (q6_1 and q6_2 vary too,
# but are scored with a tolerance for other CPUs' rounding, so they may coincide).
EXACT_VARIED = ("q7_1", "q2_3", "q6_3")


def _lesson_07(seeds: list[int], secret: str) -> dict:
    """Lesson 07's entries for a pool (q7_1 and q7_2 vary per seed; tests build a spec from these alone)."""
    majority, floors = {}, {}
    for seed in seeds:
        answers = variant_answers(seed, secret, lessons=("07",))
        majority[str(seed)], floors[str(seed)] = answers["q7_1"], answers["q7_2"]
    return {
        "q7_1": {"abs_tol": 1e-9, "variants": majority},
        "q7_2": {"variants": floors},
        "q7_3": {"expected": "average_precision"},
    }


def shared_answers(entries: dict) -> list[str]:
    """Varied questions whose expected answer is the same for two seeds of the pool (a copier's chance)."""
    clashes = []
    for qid, entry in entries.items():
        if qid not in EXACT_VARIED:
            continue
        variants = entry.get("variants") or {}
        seen: dict[str, str] = {}
        for seed, fields in variants.items():
            if "expected" not in fields:
                continue
            key = json.dumps(fields["expected"], sort_keys=True)
            if key in seen:
                clashes.append(f"{qid}: seeds {seen[key]} and {seed} share the answer {key}")
            seen[key] = seed
    return clashes


def _lesson_08() -> dict:
    import torch
    from peft import LoraConfig, TaskType, get_peft_model

    from course_utils.models import load_pretrained

    _, base = load_pretrained(labels=["negative", "positive"])
    model = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, lora_dropout=0.0, **Q.LORA_EXERCISE))
    query = model.base_model.model.bert.encoder.layer[0].attention.self.query
    update = query.lora_B["default"].weight @ query.lora_A["default"].weight
    return {
        # Counts and peft's constants: exact on every machine.
        "q8_1": {"expected": sum(p.numel() for p in model.parameters() if p.requires_grad)},
        "q8_2": {"expected": int(torch.linalg.matrix_rank(update.detach()))},
        "q8_3": {"expected": float(query.scaling["default"])},
        # Scored on the grader's test tweets; the model must be parameter-efficient.
        "q8_4": {"floor": Q.BERT_MACRO_F1_FLOOR, "max_trainable_share": Q.LORA_MAX_TRAINABLE_SHARE},
    }


def _lesson_09() -> dict:
    from transformers import AutoTokenizer

    from course_utils.labs.instruct import chat_messages, encode_example, score_answers
    from course_utils.models import offline_llm_file

    gguf = offline_llm_file()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    labels = encode_example(tokenizer, chat_messages(Q.MASK_TWEET), Q.MASK_ANSWER)["labels"]
    scores = score_answers(list(Q.SENTIMENT_REPLIES), list(Q.SENTIMENT_GOLD))
    return {
        "q9_1": {"expected": labels.count(-100), "abs_tol": 0},
        "q9_2": {"expected": sum(label != -100 for label in labels), "abs_tol": 0},
        "q9_3": {"expected": scores["exact_match"], "abs_tol": 1e-9},
        "q9_4": {"expected": scores["valid_format"], "abs_tol": 1e-9},
        # A function answer: called on random sequences drawn per run, compared with the reference loss.
        "q9_5": {"reference": "answer_only_loss", "abs_tol": 1e-4},
    }


def build(n_variants: int = 12, seeds: list[int] | None = None, secret: str | None = None) -> dict:
    """The spec. ``seeds`` and ``secret`` (tests, ``--check``) fix the pool; by default fresh random ones.

    Seeds are drawn one at a time and kept only when none of their exactly scored answers (EXACT_VARIED)
    equals another kept seed's: a pool in which two learners share an answer lets one copy the other.
    A given pool with such a clash, or with seed 0 (the published solutions' data), is refused.
    """
    secret = secret or secrets.token_hex(32)
    if seeds is not None and 0 in seeds:
        raise ValueError("seed 0 is the published solutions' data and cannot be in the grading pool")
    candidates = iter(seeds) if seeds is not None else (secrets.randbelow(10**6) + 1 for _ in range(50 * n_variants))
    pool: list[int] = []
    varied: dict[str, dict] = {}
    for seed in candidates:
        if seed in pool:
            continue
        answers = variant_answers(seed, secret)
        trial = {qid: {"variants": {**varied.get(qid, {}), str(seed): fields}} for qid, fields in answers.items()}
        clashes = shared_answers(trial)
        if clashes:
            if seeds is not None:
                raise ValueError("the variant pool gives two learners the same answer: " + "; ".join(clashes))
            continue
        pool.append(seed)
        varied = {qid: entry["variants"] for qid, entry in trial.items()}
        if seeds is None and len(pool) == n_variants:
            break
    if seeds is None and len(pool) < n_variants:
        raise ValueError(f"drew only {len(pool)} seeds with distinct answers; ask for fewer --variants")
    entries: dict = {}
    for part in (_lesson_01, _lesson_02, _lesson_03, _lesson_04, _lesson_05, _lesson_06, _lesson_08, _lesson_09):
        entries.update(part())
    entries["q7_1"] = {"abs_tol": 1e-9}
    entries["q7_3"] = {"expected": "average_precision"}
    entries.setdefault("q7_2", {})
    for qid, variants in varied.items():
        entries[qid] = {**entries.get(qid, {}), "variants": variants}
    for q in Q.QUESTIONS:
        entries[q.id] = {"points": q.points, **entries[q.id]}
    return {"format": 3, "about": "Private expected answers for course-utils grade. Never commit or hand out.",
            "canary": f"cg-canary-{secrets.token_hex(16)}", "secret": secret,
            "variant_seeds": sorted(pool), "questions": {q.id: entries[q.id] for q in Q.QUESTIONS}}


def _inside_checkout(path: Path) -> bool:
    root = HERE.parent.resolve()
    path = path.resolve()
    return path == root or root in path.parents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="private folder outside the course checkout; spec.json is written there")
    parser.add_argument("--variants", type=int, default=12, help="size of the pool of per-learner data seeds")
    parser.add_argument("--check", action="store_true", help="compare with the stored spec instead of writing it")
    args = parser.parse_args(argv)
    if _inside_checkout(args.out):
        print(f"error: {args.out} is inside the course checkout; the spec must never be committed. "
              "Choose a private folder elsewhere, e.g. ~/course-private.", file=sys.stderr)
        return 2
    target = args.out / "spec.json"
    if args.check:
        stored = json.loads(target.read_text(encoding="utf-8"))
        spec = json.loads(json.dumps(build(seeds=stored["variant_seeds"], secret=stored["secret"])))
        stale = [qid for qid in spec["questions"] if stored["questions"].get(qid) != spec["questions"][qid]]
        print("spec is up to date" if not stale else f"spec differs for {stale}; run python grading/build_spec.py --out DIR")
        return 1 if stale else 0
    spec = json.loads(json.dumps(build(args.variants)))  # normalise (tuples -> lists, numpy -> float)
    args.out.mkdir(parents=True, exist_ok=True)
    os.chmod(args.out, 0o700)
    old_mask = os.umask(0o077)  # the spec is readable by its owner only, from its first byte
    try:
        atomic_write(target, json.dumps(spec, indent=1) + "\n")
    finally:
        os.umask(old_mask)
    print(f"wrote {target} ({len(spec['questions'])} questions, {len(spec['variant_seeds'])} variants)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
