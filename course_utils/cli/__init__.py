"""The ``course-utils`` command line: one module per subcommand, dispatched from :mod:`.main`."""

from course_utils.cli.main import main

__all__ = ["main"]
