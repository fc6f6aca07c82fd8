"""Exceptions the course raises on purpose.

Every error a learner can cause (a wrong column, an offline machine asked for a Hub model) is one of
these, with a message that names the problem and what to do. The CLI prints them as one line and
exits non-zero; anything else is a bug in the course and keeps its traceback.

No lesson teaches them: every lesson meets them when an input is wrong (lesson 05's trainer raises
:class:`TrainingError` when a run cannot go on).
"""


class CourseError(Exception):
    """Base class: an expected, explainable failure."""


class DataError(CourseError, ValueError):
    """A data file or frame that cannot be used as given."""


class ModelLoadError(CourseError):
    """A model that cannot be found or loaded (offline, bad path, wrong format)."""


class ConfigError(CourseError, ValueError):
    """A configuration value outside what makes sense."""


class TrainingError(CourseError):
    """Training cannot go on: the loss diverged, memory ran out, a checkpoint does not fit."""
