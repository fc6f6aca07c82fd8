"""Sent to the submission's kernel (standard library only) and run there; never imported by the grader.

Defines ``__course_grader_collect(name)``: converts a variable to plain JSON types and returns an
object whose repr is that JSON, for the ``user_expressions`` of one execute request. The child reads
this file's text (:func:`course_utils.grading.child.collector_source`) and sends it to the kernel.
"""
def __course_grader_collect(name):
    import json
    import math
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
