"""Read a submitted model's files with the grader's code and predict on the grader's inputs.

Job on stdin: ``{"folder", "method", "inputs", "formats"}`` with ``method`` one of ``predict``,
``predict_proba`` (tabular, scikit-learn) or ``predict_texts``. No learner code runs here: the model
is data (:mod:`course_utils.grading.artefacts`), and the predictions come from scikit-learn's own
classes or the course trainer. The answer also carries the facts the rules check: the share of weights
a LoRA adapter trains, counted from its file, and the training rows at a decision tree's root.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path


def run(job: dict) -> dict:
    from course_utils.grading import artefacts

    folder = Path(job["folder"])
    meta = artefacts.read_meta(folder)
    allowed = job.get("formats") or list(artefacts.FORMATS)
    if meta["format"] not in allowed:
        raise artefacts.ArtefactRefused(f"this question needs a {' or '.join(allowed)} model, got a {meta['format']} one")
    method, inputs = job["method"], job["inputs"]
    result: dict = {"ok": True, "format": meta["format"]}
    if method == "predict_texts":
        from course_utils.models import load_pretrained

        (tokenizer, model), facts = artefacts.load_text_model(folder, meta, lambda labels: load_pretrained(labels=labels))
        labels = meta["labels"]
        values = artefacts.predict_texts(tokenizer, model, labels, [str(t) for t in inputs], int(meta.get("max_length", 128)))
        result.update(facts)
    else:
        import numpy as np

        model = artefacts.load_sklearn(folder)
        X = np.asarray(inputs, dtype=float)
        got = np.asarray(getattr(model, method)(X))
        if method == "predict_proba":
            got = got[:, 1]
        values = [float(v) if math.isfinite(float(v)) else None for v in got.ravel().tolist()]
        result["model"] = type(model).__name__
        result["tree_root_samples"] = artefacts.tree_root_samples(model)
    if len(values) != len(inputs):
        raise ValueError(f"{len(values)} predictions for {len(inputs)} inputs")
    result["value"] = values
    return result


def main() -> None:
    job = json.loads(sys.stdin.read())
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # library chatter goes to stderr
    try:
        result = run(job)
    except Exception as exc:  # noqa: BLE001 - every failure is one line in the report
        from course_utils.grading.artefacts import ArtefactRefused

        prefix = "refused: " if isinstance(exc, ArtefactRefused) else f"{type(exc).__name__}: "
        result = {"ok": False, "error": (prefix + str(exc))[:300]}
    out.write(json.dumps(result, allow_nan=False) + "\n")
    out.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
