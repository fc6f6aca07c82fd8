"""Helper package for the fine-tuning course.

The notebooks teach; this package does the work, so that every number a lesson shows comes from
code that is tested once here instead of copied into eight notebooks.
"""

from course_utils.seed import set_seed

__version__ = "0.1.0"

__all__ = ["__version__", "set_seed"]
