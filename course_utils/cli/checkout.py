"""Where the course checkout is: the folder above the ``course_utils`` package (notebooks/, solutions/, README.md).

The commands that work on the checkout rather than on a learner's data (``release``, ``site``,
``exercises``) find it here, in one way. No lesson teaches it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["checkout_root"]


def checkout_root() -> Path:
    """The folder that holds the ``course_utils`` package (in a clone of the course: the repository's root)."""
    return Path(__file__).resolve().parents[2]
