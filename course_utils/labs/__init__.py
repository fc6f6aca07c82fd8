"""The lessons' small experiments: each module belongs to the lesson that teaches it.

Labs may use the core (``course_utils.data``, ``metrics``, ``plots``, ...); the core never imports a
lab, and the grading wing may import both (``tests/test_layout.py`` enforces the directions).
"""
