"""Call a learner's function answer on the grader's cases, in a fresh interpreter of its own.

Job on stdin: ``{"source", "name", "cases"}``; the source is the notebook's top-level definitions
(:func:`course_utils.grading.child.extract_definitions`). The learner's prints go to stderr, so the
one line on stdout is ours. This process runs learner code, so whatever it writes can speak for this
one question only: its output is read as that question's answer and nothing else.
"""

from __future__ import annotations

import json
import math
import os
import sys


def plain(value):
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(float(value)) else None
    return {"__unsupported__": type(value).__name__}


def main() -> None:
    job = json.loads(sys.stdin.read())
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the learner's prints go to stderr; only the final line below is stdout
    try:
        space = {"__name__": "submission"}
        exec(compile(job["source"], "submission", "exec"), space)  # noqa: S102 - confined, one question
        fn = space.get(job["name"])
        if not callable(fn):
            raise NameError(job["name"] + " is not defined as a function")
    except BaseException as exc:  # noqa: BLE001
        out.write(json.dumps({"ok": False, "error": (type(exc).__name__ + ": " + str(exc))[:300]}) + "\n")
        out.flush()
        os._exit(0)
    results = []
    for case in job["cases"]:
        try:
            results.append({"ok": True, "value": plain(fn(*case))})
        except BaseException as exc:  # noqa: BLE001
            results.append({"ok": False, "error": (type(exc).__name__ + ": " + str(exc))[:200]})
    out.write(json.dumps({"ok": True, "value": results}) + "\n")
    out.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
