"""Links that work where learners start: every relative link resolves, and JupyterLab serves exercises/.

A lesson ends with a link to its exercise (``../exercises/NN_topic.ipynb``); JupyterLab refuses a link
outside the folder it was started in, so the README's start command must start it at the repository
root. Both are checked here: statically for every link, and by starting the README's command for real.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
DOCS = ["README.md", "CONTRIBUTING.md", "INSTRUCTORS.md", "benchmarks/README.md", "grading/README.md"]


def markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return path.read_text(encoding="utf-8")


def relative_links(text: str) -> list[str]:
    links = LINK.findall(text) + IMAGE.findall(text)
    return [link for link in links if not re.match(r"^[a-z][a-z0-9+.-]*:|^#|^//", link)]


def broken_links(path: Path) -> list[str]:
    bad = []
    for link in relative_links(markdown_of(path)):
        target = (path.parent / link.split("#", 1)[0]).resolve()
        if not target.exists():
            bad.append(f"{path.relative_to(ROOT)}: {link}")
        elif ROOT not in target.parents and target != ROOT:
            bad.append(f"{path.relative_to(ROOT)}: {link} leaves the repository")
    return bad


def documents() -> list[Path]:
    notebooks = sorted(p for d in ("notebooks", "exercises", "solutions") for p in (ROOT / d).glob("*.ipynb"))
    return [ROOT / d for d in DOCS if (ROOT / d).is_file()] + notebooks


def test_every_relative_link_in_the_docs_and_notebooks_resolves():
    checked = documents()
    assert len(checked) > 10
    bad = [b for path in checked for b in broken_links(path)]
    assert bad == []


def test_the_link_check_can_fail(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "exists.md").write_text("x")
    doc = tmp_path / "doc.md"
    doc.write_text("[ok](exists.md) [ok too](exists.md#part) [web](https://example.org) [gone](missing.ipynb)")
    assert broken_links(doc) == ["doc.md: missing.ipynb"]


def test_every_lesson_links_to_its_exercise():
    for lesson in sorted((ROOT / "notebooks").glob("0[1-9]_*.ipynb")):
        exercise = ROOT / "exercises" / lesson.name
        if exercise.exists():
            assert f"../exercises/{lesson.name}" in relative_links(markdown_of(lesson)), lesson.name


def readme_start_command() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"(jupyter lab [^`\n]+)", readme)
    assert match, "the README names no `jupyter lab ...` start command"
    return shlex.split(match.group(1))


def test_the_readme_starts_jupyterlab_at_the_repository_root():
    command = readme_start_command()
    target = ROOT / command[-1]
    assert target.is_file() and target.suffix == ".ipynb", f"the README's start command opens {command[-1]}, not a notebook"
    # Given a file, Jupyter serves the file's folder unless told otherwise: without the root, the
    # lessons' ../exercises/ links are "outside root contents directory" (404).
    assert "--notebook-dir=." in command or "--ServerApp.root_dir=." in command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_readme_command_serves_the_exercises(tmp_path):
    command = readme_start_command()
    port, token = _free_port(), "course-test-token"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", *command[2:], "--no-browser", f"--ServerApp.port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0", "--allow-root"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        listing = None
        for _ in range(120):
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/exercises?token={token}", timeout=5) as r:
                    listing = json.load(r)
                break
            except OSError:
                if proc.poll() is not None:
                    break
        assert listing is not None, "JupyterLab, started as the README says, did not serve /api/contents/exercises"
        names = {item["name"] for item in listing["content"]}
        assert {p.name for p in (ROOT / "exercises").glob("*.ipynb")} <= names
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


CODE_LABEL = re.compile(r"(?<!\!)\[`[^\]]*`\]\(")


def test_notebook_links_have_plain_text_labels():
    """JupyterLab renders a link whose text is code as grey code, which does not look clickable."""
    notebooks = [p for p in documents() if p.suffix == ".ipynb"]
    bad = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in notebooks for m in CODE_LABEL.finditer(markdown_of(p))]
    assert bad == []
    assert CODE_LABEL.search("see [`03_hyperparameter_tuning`](../notebooks/03_hyperparameter_tuning.ipynb)")
