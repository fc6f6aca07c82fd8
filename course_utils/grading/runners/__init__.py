"""Programs the grading child starts, each in a fresh isolated interpreter (``python -I``).

* :mod:`.function`: a learner's function answer, called on the grader's random cases;
* :mod:`.artefact`: a submitted model's files, read by the grader's code, predicting on the grader's inputs.

Each reads one JSON job on stdin and writes one JSON line on stdout; see :func:`course_utils.grading.child.run_program`.
"""
