"""The instructors' wing: the question registry, learners' checks, exercise builds, the sandboxed grader.

It may import the core and the labs; neither imports it (``tests/test_layout.py`` enforces this).
"""
