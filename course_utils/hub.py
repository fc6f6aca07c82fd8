"""Is the Hugging Face Hub there? The one network check of the course, decided in seconds.

``models`` asks it before downloading a model, ``data`` before downloading IMDB, and ``course-utils
doctor`` reports it. Honouring the offline switches first (``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE``),
then a plain TCP connect, keeps offline machines from waiting on the libraries' own retries (which can
take a minute).

Lesson 05 (and lesson 09) use :func:`hub_reachable` to choose between the offline model and the Hub's.
"""

from __future__ import annotations

import os
import socket

__all__ = ["HF_HOST", "OFFLINE_SWITCHES", "hub_reachable", "offline_requested"]

HF_HOST = "huggingface.co"
OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def offline_requested() -> bool:
    """Whether the environment asks the Hugging Face libraries to stay offline."""
    return any(os.environ.get(name, "0").lower() in {"1", "true", "yes"} for name in OFFLINE_SWITCHES)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub can be reached, decided in at most ``timeout`` seconds."""
    if offline_requested():
        return False
    try:
        with socket.create_connection((HF_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False
