"""The course website: built offline from the notebooks, a page per notebook, no missing image or link.

CI builds the whole site but executes only lesson 00 (the full execution is what nbval already does
for every notebook, and would double CI's time); the browser test opens that lesson in a real
headless Chromium and checks that its plot is on screen.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from course_utils.cli.site import (
    NO_OUTPUTS_CLASS,
    REPOSITORY_ENV,
    SECTIONS,
    build,
    check_site,
    estimate_minutes,
    landing_page,
    lesson_minutes,
    notebook_stems,
    plan_execution,
    repo_root,
    repository_url,
)
from course_utils.errors import ConfigError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("site")
    result = build(base / "site", execute=["00_setup"], cache=base / "cache", progress=False, repository="")
    assert any("00_setup" in line for line in result.executed) or result.pages > 0
    return result.out


def test_every_notebook_has_a_page_and_nothing_is_broken(site):
    report = check_site(site, allow_unexecuted=True)  # lessons 01-09 were left out on request (--execute 00_setup)
    assert report.problems == []
    stems = notebook_stems(repo_root())
    for folder, _ in SECTIONS:
        assert stems[folder], f"no notebooks found in {folder}/"
        for stem in stems[folder]:
            assert (site / folder / f"{stem}.html").is_file()
    assert report.images_per_page["notebooks/00_setup.html"] >= 1  # the executed lesson shows its plot
    assert (site / "search.html").is_file()


def test_the_landing_page_is_the_readme_learner_part():
    readme = "# Course\n\nlearners read this\n\n## For instructors\n\ngrading manual\n"
    page = landing_page(readme)
    assert "learners read this" in page and "grading manual" not in page


def test_the_checks_fail_on_a_missing_image_and_a_broken_link(site, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(site, broken)
    lesson = broken / "notebooks" / "00_setup.html"
    lesson.write_text(lesson.read_text(encoding="utf-8") + '<a href="../nowhere.html">x</a><a href="#no-such-anchor">y</a>',
                      encoding="utf-8")
    for image in (broken / "_images").glob("*.png"):
        image.unlink()
    (broken / "notebooks" / "01_what_is_fine_tuning.html").unlink()
    problems = "\n".join(check_site(broken, allow_unexecuted=True).problems)
    assert "image" in problems and "does not exist" in problems
    assert "nowhere.html points to a missing file" in problems
    assert "no-such-anchor points to a missing anchor" in problems
    assert "no page for notebooks/01_what_is_fine_tuning.ipynb" in problems


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


PROBE = """<!doctype html><html><body><div id="result">pending</div>
<iframe id="f" src="/notebooks/00_setup.html" width="1200" height="3000"></iframe>
<script>
document.getElementById('f').addEventListener('load', function () {
  var doc = this.contentDocument, imgs = Array.from(doc.images);
  var shown = imgs.filter(function (i) { return i.complete && i.naturalWidth > 100; }).length;
  document.getElementById('result').textContent = 'images ' + shown + ' of ' + imgs.length +
      ' title ' + doc.title;
});
</script></body></html>"""


def test_a_real_browser_shows_the_lesson_plot(site, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine: install Debian's `chromium` (apt-get install chromium) "
                    "to run the browser test; .ci/run installs it where apt is available")
    (site / "probe.html").write_text(PROBE, encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'profile'}"]
        dom = subprocess.run([browser, *flags, "--virtual-time-budget=15000", "--dump-dom", f"{url}/probe.html"],
                             capture_output=True, text=True, timeout=120).stdout
        shot = tmp_path / "lesson00.png"
        subprocess.run([browser, *flags, "--window-size=1280,1600", f"--screenshot={shot}", f"{url}/notebooks/00_setup.html"],
                       capture_output=True, timeout=120)
    finally:
        server.shutdown()
    assert "images " in dom, f"the probe page did not run in Chromium: {dom[-500:]!r}"
    result = dom.split('<div id="result">', 1)[1].split("</div>", 1)[0]
    shown = int(result.split()[1])
    assert shown >= 1, f"Chromium shows no plot on lesson 00: {result}"
    assert shot.is_file() and shot.stat().st_size > 10_000  # a rendered page, not a blank one


def _html(site: Path, page: str) -> str:
    return (site / page).read_text(encoding="utf-8")


def test_a_lesson_page_without_its_plots_fails_the_check(site, tmp_path):
    """Lesson 05 says "the histogram shows…": a page without the histogram must not pass."""
    strict = "\n".join(check_site(site).problems)
    assert "notebooks/05_fine_tuning_bert.html: rendered without outputs, so its plots are missing" in strict
    assert "notebooks/00_setup.html" not in strict  # executed: its plot is there
    broken = tmp_path / "broken"
    shutil.copytree(site, broken)
    lesson = broken / "notebooks" / "00_setup.html"
    text = lesson.read_text(encoding="utf-8")
    lesson.write_text(re.sub(r'<img[^>]*src="\.\./_images/[^"]*"[^>]*>', "", text), encoding="utf-8")
    problems = check_site(broken, allow_unexecuted=True).problems  # no "without outputs" note: no excuse
    assert "notebooks/00_setup.html: the lesson plots but its page shows no image" in problems


def test_pages_rendered_without_outputs_say_so_under_their_title(site):
    assert NO_OUTPUTS_CLASS not in _html(site, "notebooks/00_setup.html")
    for page in ("notebooks/05_fine_tuning_bert.html", "exercises/05_fine_tuning_bert.html",
                 "solutions/05_fine_tuning_bert.html"):
        text = _html(site, page)
        assert NO_OUTPUTS_CLASS in text, page
        assert text.index("<h1") < text.index(NO_OUTPUTS_CLASS) < text.index("</section>"), page
    assert "--solutions" in _html(site, "solutions/05_fine_tuning_bert.html")


def _next(site: Path, page: str) -> str:
    match = re.search(r'<link rel="next" title="[^"]*" href="([^"]+)"', _html(site, page))
    return match.group(1) if match else ""


def test_each_lesson_is_followed_by_its_exercise_and_solutions_come_last(site):
    stems = notebook_stems(repo_root())
    for stem in stems["notebooks"]:
        if stem in stems["exercises"]:
            assert _next(site, f"notebooks/{stem}.html") == f"../exercises/{stem}.html"
    lessons = stems["notebooks"]
    for stem in stems["exercises"][:-1]:
        following = lessons[lessons.index(stem) + 1]
        assert _next(site, f"exercises/{stem}.html") == f"../notebooks/{following}.html"
    assert "solutions/" not in _next(site, f"exercises/{stems['exercises'][-1]}.html")
    assert "<title>Solution 04 · " in _html(site, "solutions/04_evaluation_metrics.html")
    assert "<title>Exercises 04 · " in _html(site, "exercises/04_evaluation_metrics.html")


def test_without_a_repository_url_there_are_no_launch_buttons(site):
    lesson = _html(site, "notebooks/05_fine_tuning_bert.html")
    assert "colab.research.google.com" not in lesson and "mybinder.org" not in lesson


def test_with_a_repository_url_pages_open_in_colab_and_binder(tmp_path):
    url = "https://github.com/example-org/finetuning-course"
    out = build(tmp_path / "site", execute=[], cache=tmp_path / "cache", progress=False, repository=url).out
    lesson = _html(out, "notebooks/05_fine_tuning_bert.html")
    assert ("https://colab.research.google.com/github/example-org/finetuning-course/blob/main/"
            "notebooks/05_fine_tuning_bert.ipynb") in lesson
    binder = "https://mybinder.org/v2/gh/example-org/finetuning-course/main"
    assert f"{binder}?urlpath=lab/tree/notebooks/05_fine_tuning_bert.ipynb" in lesson
    assert f'href="{url}"' in _html(out, "index.html")  # the link back to the repository


def test_the_repository_setting_one_clear_error_and_its_sources(tmp_path, monkeypatch):
    monkeypatch.delenv(REPOSITORY_ENV, raising=False)
    (tmp_path / "pyproject.toml").write_text('[tool.course-site]\nrepository_url = "https://github.com/a/b.git"\n')
    assert repository_url(None, tmp_path) == "https://github.com/a/b"
    monkeypatch.setenv(REPOSITORY_ENV, "https://github.com/c/d/")
    assert repository_url(None, tmp_path) == "https://github.com/c/d"
    assert repository_url("", tmp_path) is None
    with pytest.raises(ConfigError) as bad:
        repository_url("github.com/a b", tmp_path)
    assert "\n" not in str(bad.value) and "https://github.com/OWNER/REPO" in str(bad.value)
    monkeypatch.setenv(REPOSITORY_ENV, "ftp://example.org/x")
    with pytest.raises(ConfigError, match=REPOSITORY_ENV):
        repository_url(None, tmp_path)


def test_the_default_build_executes_lessons_not_exercises_and_solutions_on_request():
    stems = notebook_stems(repo_root())
    default = plan_execution(stems, None, solutions=False)
    assert default == [f"notebooks/{s}" for s in stems["notebooks"]]
    with_solutions = plan_execution(stems, None, solutions=True)
    assert set(with_solutions) - set(default) == {f"solutions/{s}" for s in stems["solutions"]}
    assert not any(d.startswith("exercises/") for d in with_solutions)
    assert plan_execution(stems, ["00_setup", "exercises/04_evaluation_metrics"], False) == [
        "notebooks/00_setup", "exercises/04_evaluation_metrics"]
    with pytest.raises(ConfigError, match="names no notebook"):
        plan_execution(stems, ["99_nothing"], False)


def test_the_estimate_comes_from_the_readmes_minutes():
    minutes = lesson_minutes((repo_root() / "README.md").read_text(encoding="utf-8"))
    assert set(minutes) == set(notebook_stems(repo_root())["notebooks"])
    docs = ["notebooks/05_fine_tuning_bert", "notebooks/09_instruction_tuning_a_small_llm"]
    total = minutes["05_fine_tuning_bert"] + minutes["09_instruction_tuning_a_small_llm"]
    assert estimate_minutes(docs, minutes, set()) == pytest.approx(total)
    assert estimate_minutes(docs, minutes, {docs[1]}) == pytest.approx(minutes["05_fine_tuning_bert"])


def test_wide_tables_scroll_instead_of_clipping(site):
    css = (site / "_static" / "course.css").read_text(encoding="utf-8")
    assert "overflow-x: auto" in css
    assert "course.css" in _html(site, "index.html")


def test_the_landing_tables_lessons_and_exercises_are_links(site):
    index = _html(site, "index.html")
    for stem in notebook_stems(repo_root())["exercises"]:
        assert f'href="notebooks/{stem}.html"' in index and f'href="exercises/{stem}.html"' in index, stem
