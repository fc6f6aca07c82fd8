"""The instructor's private spec: reading and checking it, and what each learner's variant expects.

The spec is written by ``grading/build_spec.py`` into a folder outside the course checkout. It holds
the expected answers, a random canary (the sandbox's probe looks for it) and a secret that keys each
learner's variant seed and the private evaluation rows. It never enters a process that runs a submission.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path

from course_utils.errors import ConfigError
from course_utils.grading import questions as registry
from course_utils.grading.confinement import exposed_paths
from course_utils.grading.questions import Question

SPEC_FORMAT = 3

# Fields each scoring rule needs from the spec; checked on load so a typo fails before grading.
_REQUIRED = {
    "number": ("expected",),
    "exact": ("expected",),
    "set": ("expected",),
    "number_map": ("expected",),
    "cases": ("reference",),
    "params": ("expected", "grid"),
    "threshold": ("y_true", "scores", "target_recall", "min_precision"),
    "dataset_plan": (),
    "artefact_accuracy": ("floor",),
    "artefact_average_precision": ("floor",),
    "artefact_macro_f1": ("floor",),
}


def load_spec(path: str | os.PathLike | None) -> dict:
    """Read and validate the spec: every registered question needs an entry with its rule's fields."""
    if path is None:
        raise ConfigError("no spec given: pass --spec PATH. Generate it outside the course checkout with "
                          "`python grading/build_spec.py --out DIR` (see INSTRUCTORS.md).")
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"spec file {path} not found; generate it with `python grading/build_spec.py --out DIR` "
                          "and pass --spec DIR/spec.json.")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"spec file {path} is not valid JSON: {exc}.") from None
    entries = spec.get("questions") if isinstance(spec, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f'spec file {path} needs a top-level "questions" object keyed by question id.')
    if spec.get("format") != SPEC_FORMAT or not isinstance(spec.get("canary"), str) or not isinstance(spec.get("secret"), str):
        raise ConfigError(f"spec file {path} is from an older grader (no canary/secret, format != {SPEC_FORMAT}); "
                          "regenerate it with `python grading/build_spec.py --out DIR`.")
    pool = spec.get("variant_seeds")
    if not isinstance(pool, list) or not pool or 0 in pool:
        raise ConfigError(f"spec file {path} needs a pool of variant seeds without 0 (seed 0 is the published "
                          "solutions' data); regenerate it with `python grading/build_spec.py --out DIR`.")
    for q in registry.QUESTIONS:
        entry = entries.get(q.id)
        if not isinstance(entry, dict):
            raise ConfigError(f"spec file {path} has no entry for {q.id} ({q.notebook}: {q.variable}).")
        variants = entry.get("variants")
        if variants is not None and (not isinstance(variants, dict) or not variants):
            raise ConfigError(f"spec entry {q.id} has an empty or malformed 'variants' in {path}.")
        for variant in (variants.values() if variants else [entry]):
            missing = [f for f in _REQUIRED[q.kind] if f not in variant and f not in entry]
            if missing:
                raise ConfigError(f"spec entry {q.id} (rule {q.kind!r}) lacks {missing} in {path}.")
    unknown = sorted(set(entries) - {q.id for q in registry.QUESTIONS})
    if unknown:
        raise ConfigError(f"spec file {path} has entries for unknown questions {unknown}; is it for another course version?")
    return spec


def check_spec_location(spec_path: Path) -> None:
    """The spec must not sit where a submission's sandbox shows files (Python, venv, package)."""
    spec_path = spec_path.resolve()
    for exposed in exposed_paths():
        if exposed == spec_path.parent or exposed in spec_path.parents:
            raise ConfigError(f"the spec {spec_path} lies inside {exposed}, which every submission can read; "
                              "keep it in a private folder outside the course checkout and the Python installation.")


def learner_seed(spec: Mapping, learner: str) -> int:
    """The learner's variant seed: one of the spec's seeds, chosen by a keyed hash of the learner id.

    The key (``spec["secret"]``) is private, so a learner cannot tell which seeds others got; the
    pool is regenerated with every spec, so seeds and answers in an older spec are worthless.
    """
    pool = spec.get("variant_seeds") or []
    if not pool:
        raise ConfigError("the spec has no variant seeds; regenerate it with `python grading/build_spec.py --out DIR`.")
    digest = hmac.new(str(spec["secret"]).encode(), learner.encode("utf-8"), hashlib.sha256).digest()
    return int(pool[int.from_bytes(digest[:8], "big") % len(pool)])


def entry_for(spec: Mapping, question: Question, seed: int) -> dict:
    """The spec entry of ``question`` for variant ``seed`` (variant fields override the shared ones)."""
    entry = dict(spec["questions"][question.id])
    variants = entry.pop("variants", None)
    if variants:
        if str(seed) not in variants:
            raise ConfigError(f"spec has no variant {seed} for {question.id}; regenerate it.")
        entry.update(variants[str(seed)])
    return entry



def keyed_seed(spec: Mapping, purpose: str, seed: int) -> int:
    """A seed only the spec's holder can compute (for rows a learner cannot regenerate)."""
    digest = hmac.new(str(spec["secret"]).encode(), f"{purpose}:{seed}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big")
