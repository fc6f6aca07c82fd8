"""``course-utils site build``: the course website, built offline from the executed notebooks.

Why Sphinx with myst-nb: everything it needs installs from PyPI and builds with the network off
(Jupyter Book 2 / mystmd fetch a theme at build time), it renders notebook outputs (plots, tables,
widget state) and has a search page, and its execution goes through jupyter-cache, so a rebuild
after a one-lesson change re-executes that lesson only.

What runs: the lessons (``notebooks/``) are executed, cached per notebook; the exercises are rendered
unexecuted (a learner runs them); the solutions are executed only with ``--solutions``. Every page
rendered without outputs says so under its title. ``site check`` fails a lesson page whose notebook
plots but whose page shows no image.

The build stages a source tree under ``<out>_source`` that keeps the repository's relative layout
(``notebooks/``, ``exercises/``, ``solutions/``), so the links lessons already contain
(``../exercises/04_evaluation_metrics.ipynb``) work on the site as they do in JupyterLab. The
landing page is the README's learner part (everything before its "For instructors" section).

Examples:
  course-utils site build                        # the lessons executed (cached), into build/site
  course-utils site build --solutions            # the solutions executed too
  course-utils site build --execute 00_setup     # execute only these; render the others without outputs
  course-utils site build --repository-url https://github.com/OWNER/REPO   # Colab/Binder buttons, repository link
  course-utils site check build/site             # page per notebook, images exist, links resolve, lessons show plots
"""

from __future__ import annotations

import argparse
import html.parser
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from course_utils.cli.checkout import checkout_root
from course_utils.errors import ConfigError

SECTIONS = (  # (folder, caption on the site)
    ("notebooks", "Lessons"),
    ("exercises", "Exercises"),
    ("solutions", "Solutions: try the exercise first"),
)
COURSE_CAPTION = "The course: each lesson, then its exercise"
REPOSITORY_ENV = "COURSE_SITE_REPOSITORY_URL"
_GITHUB_URL = re.compile(r"https://github\.com/[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")
NO_OUTPUTS_CLASS = "course-no-outputs"
_MINUTES_ROW = re.compile(r"^\|[^|\n]*\(notebooks/(?P<stem>\d\d_[a-z0-9_]+)\.ipynb\)[^|\n]*\|.*\|"
                          r"\s*(?P<minutes>\d+(?:\.\d+)?)\s*\|\s*$",
                          re.MULTILINE)
EXTRA_PAGES = ("INSTRUCTORS.md", "CONTRIBUTING.md", "benchmarks/README.md")
INSTRUCTORS_HEADING = re.compile(r"^##\s+For instructors\b.*$", re.MULTILINE)
DEFAULT_OUT = Path("build/site")
DEFAULT_CACHE = Path("build/.jupyter_cache")


def repo_root() -> Path:
    """The course checkout: the folder above the package that holds notebooks/ and README.md."""
    root = checkout_root()
    if not (root / "notebooks").is_dir() or not (root / "README.md").is_file():
        raise ConfigError(f"no course checkout at {root} (notebooks/ and README.md are needed); "
                          "run the site build from a clone of the course, not an installed wheel.")
    return root


def notebook_stems(root: Path) -> dict[str, list[str]]:
    """Every notebook the site shows, per section, in course order (their names start NN_)."""
    return {folder: sorted(p.stem for p in (root / folder).glob("[0-9][0-9]_*.ipynb")) for folder, _ in SECTIONS}


def landing_page(readme: str) -> str:
    """The README's learner part, with the toctrees that give the site its navigation in course order."""
    match = INSTRUCTORS_HEADING.search(readme)
    learner = readme[: match.start()] if match else readme
    return learner.rstrip() + "\n"


def lesson_minutes(readme: str) -> dict[str, float]:
    """Minutes per lesson on a 2-core CPU, from the README's course table (its last column)."""
    return {m.group("stem"): float(m.group("minutes")) for m in _MINUTES_ROW.finditer(readme)}


def repository_url(given: str | None = None, root: Path | None = None) -> str | None:
    """The one setting for launch buttons and the repository link: ``--repository-url``, else the
    ``COURSE_SITE_REPOSITORY_URL`` environment variable, else ``[tool.course-site] repository_url`` in
    pyproject.toml. Empty means none (no buttons). Launch buttons need a GitHub repository."""
    source = "--repository-url"
    if given is None:
        given, source = os.environ.get(REPOSITORY_ENV), REPOSITORY_ENV
    if given is None:
        given, source = _pyproject_site(root or repo_root()).get("repository_url", ""), "[tool.course-site] repository_url"
    url = (given or "").strip().rstrip("/")
    if url.endswith(".git"):
        url = url[:-4]
    if not url:
        return None
    if not _GITHUB_URL.fullmatch(url):
        raise ConfigError(f"{source} {given!r} is not a GitHub repository URL; give one such as "
                          "https://github.com/OWNER/REPO (Colab and Binder open notebooks from GitHub), or leave it empty.")
    return url


def _pyproject_site(root: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    return tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("course-site", {})


def _toctrees(stems: dict[str, list[str]], extras: Sequence[str]) -> str:
    """Navigation in learning order: each lesson followed by its exercise (Sphinx's "Next" follows the
    toctrees), then the pages for instructors, then the solutions in their own section at the end."""
    course = []
    for stem in stems["notebooks"]:
        course.append(f"notebooks/{stem}")
        if stem in stems["exercises"]:
            course.append(f"exercises/{stem}")
    course += [f"exercises/{s}" for s in stems["exercises"] if s not in stems["notebooks"]]
    groups = [(COURSE_CAPTION, course),
              ("For instructors and contributors", [str(Path(e).with_suffix("")) for e in extras]),
              (dict(SECTIONS)["solutions"], [f"solutions/{s}" for s in stems["solutions"]])]
    return "\n".join(f"```{{toctree}}\n:caption: {caption}\n:maxdepth: 1\n\n" + "\n".join(entries) + "\n```\n"
                     for caption, entries in groups if entries)


CONF = '''# Generated by `course-utils site build`; edit course_utils/cli/site.py instead.
project = "Fine-tuning, hands on"
extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_theme_options = {theme_options!r}
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = {mode!r}
nb_execution_cache_path = {cache!r}
nb_execution_excludepatterns = {excluded!r}
nb_execution_timeout = {timeout}
nb_execution_raise_on_error = True
nb_merge_streams = True
suppress_warnings = ["myst.header", "misc.highlighting_failure"]
'''

# Wide tables (the landing page's course table) scroll inside the page instead of clipping their
# last column; their cells wrap, smaller on a phone. Checked in Chromium: at 1280 px the course table shows
# all four columns; at 400 px three, and it scrolls sideways to the minutes.
CSS = """.bd-article .pst-scrollable-table-container { overflow-x: auto; max-width: 100%; }
.bd-article table td, .bd-article table th { white-space: normal; overflow-wrap: break-word; }
.bd-article table td:last-child, .bd-article table th:last-child { min-width: 4.5em; }
@media (max-width: 600px) {
  .bd-article table { font-size: 0.8rem; width: 100% !important; }
  .bd-article table td, .bd-article table th { padding: 0.25rem 0.3rem; hyphens: auto; }
}
"""


def theme_options(url: str | None, branch: str = "main") -> dict:
    """sphinx-book-theme options: launch buttons (Colab, Binder) and a repository link only with a URL."""
    options: dict = {"show_navbar_depth": 1, "use_download_button": True}
    if url:
        options.update(repository_url=url, repository_branch=branch, path_to_docs="", use_repository_button=True,
                       launch_buttons={"colab_url": "https://colab.research.google.com",
                                       "binderhub_url": "https://mybinder.org", "notebook_interface": "jupyterlab"})
    return options


def _no_outputs_note(folder: str) -> str:
    if folder == "exercises":
        text = ("This exercise is shown without outputs: it is yours to run. Open it in Jupyter (or with a launch "
                "button above, where the site has them) and run it cell by cell; each check prints ✓ or ✗.")
    elif folder == "solutions":
        text = ("This solution is shown without outputs. `course-utils site build --solutions` builds the site "
                "with the solutions executed; or run the notebook in Jupyter.")
    else:
        text = ("This lesson was rendered without running it, so its outputs and plots are missing. "
                "`course-utils site build` (without `--execute`) runs every lesson; or run the notebook in Jupyter.")
    return f":::{{note}}\n:class: {NO_OUTPUTS_CLASS}\n{text}\n:::\n"


def _mark_without_outputs(path: Path, folder: str) -> None:
    """Put the "shown without outputs" note right under the notebook's title (its first heading)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    note = _no_outputs_note(folder)
    if first is None:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(note))
    else:
        title, _, rest = first.source.partition("\n")
        first.source = f"{title}\n\n{note}\n{rest}" if title.startswith("#") else f"{note}\n{first.source}"
    nbformat.write(nb, path)


def _readme_links_to_index(text: str, page: str) -> str:
    """The README is the landing page (index) on the site: point links to it there."""
    index = os.path.relpath("index.md", str(Path(page).parent) or ".")
    return re.sub(r"\]\((?:\./)?(?:\.\./)*README\.md(#[^)]*)?\)", lambda m: f"]({index}{m.group(1) or ''})", text)


def plan_execution(stems: dict[str, list[str]], execute: Sequence[str] | None, solutions: bool) -> list[str]:
    """The documents to execute: by default the lessons (and the solutions with ``solutions``);
    with ``execute``, exactly the notebooks named (``04_evaluation_metrics`` means the lesson)."""
    all_docs = [f"{folder}/{s}" for folder, _ in SECTIONS for s in stems[folder]]
    if execute is None:
        return [d for d in all_docs if d.startswith("notebooks/") or (solutions and d.startswith("solutions/"))]
    wanted = set(execute)
    unknown = wanted - {d.split("/", 1)[1] for d in all_docs} - set(all_docs)
    if unknown:
        raise ConfigError(f"--execute names no notebook: {sorted(unknown)}; use names such as 04_evaluation_metrics "
                          "or exercises/04_evaluation_metrics.")
    chosen = [d for d in all_docs if d in wanted or (d.startswith("notebooks/") and d.split("/", 1)[1] in wanted)]
    if solutions:
        chosen += [d for d in all_docs if d.startswith("solutions/") and d not in chosen]
    return chosen


@dataclass
class SiteBuild:
    """What a build did: where the site is, how long it took, which notebooks it executed."""

    out: Path
    seconds: float
    pages: int
    executed: list[str] = field(default_factory=list)


def stage(root: Path, source: Path, execute: Sequence[str] | None, cache: Path, timeout: int, *,
          solutions: bool = False, url: str | None = None) -> tuple[dict[str, list[str]], list[str]]:
    """Write the Sphinx source tree: conf.py, index.md, copies of the notebooks (those not executed
    marked as such under their title) and extra pages. Returns the notebooks per section and the
    documents that will be executed."""
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    stems = notebook_stems(root)
    to_execute = plan_execution(stems, execute, solutions)
    for folder, _ in SECTIONS:
        (source / folder).mkdir()
        for stem in stems[folder]:
            target = source / folder / f"{stem}.ipynb"
            shutil.copy2(root / folder / f"{stem}.ipynb", target)
            if f"{folder}/{stem}" not in to_execute:
                _mark_without_outputs(target, folder)
    extras = [e for e in EXTRA_PAGES if (root / e).is_file()]
    for extra in extras:
        (source / extra).parent.mkdir(parents=True, exist_ok=True)
        (source / extra).write_text(_readme_links_to_index((root / extra).read_text(encoding="utf-8"), extra), encoding="utf-8")
    readme = (root / "README.md").read_text(encoding="utf-8")
    (source / "index.md").write_text(landing_page(readme) + "\n" + _toctrees(stems, extras), encoding="utf-8")
    (source / "_static").mkdir()
    (source / "_static" / "course.css").write_text(CSS, encoding="utf-8")
    all_docs = [f"{folder}/{s}" for folder, _ in SECTIONS for s in stems[folder]]
    excluded = [f"{d}.ipynb" for d in all_docs if d not in to_execute]
    mode = "cache" if to_execute else "off"
    (source / "conf.py").write_text(
        CONF.format(mode=mode, cache=str(cache.resolve()), excluded=excluded, timeout=timeout,
                    theme_options=theme_options(url, str(_pyproject_site(root).get("repository_branch", "main")))),
        encoding="utf-8")
    return stems, to_execute


def _cached(cache: Path, notebook: Path) -> bool:
    """Whether jupyter-cache holds this notebook's outputs (then the build does not execute it)."""
    if not cache.is_dir():
        return False
    try:
        from jupyter_cache import get_cache

        get_cache(cache).match_cache_file(str(notebook))
        return True
    except Exception:  # KeyError when not cached; an unreadable cache just re-executes
        return False


def estimate_minutes(to_execute: Sequence[str], minutes: dict[str, float], cached: set[str]) -> float:
    """Minutes the build will spend executing, from the README's per-lesson figures (a solution is
    counted as its lesson); cached notebooks cost nothing."""
    return sum(minutes.get(doc.split("/", 1)[1], 0.0) for doc in to_execute if doc not in cached)


_PROGRESS = re.compile(r"^reading sources\.\.\. \[\s*(\d+)%\]\s+(\S+)")


def build(out: Path = DEFAULT_OUT, *, execute: Sequence[str] | None = None, cache: Path = DEFAULT_CACHE,
          timeout: int = 1200, progress: bool = True, solutions: bool = False,
          repository: str | None = None) -> SiteBuild:
    """Stage the sources, run Sphinx with a progress bar, and return what was built.

    Sphinx reads (and, through jupyter-cache, executes) one document at a time; its "reading
    sources" lines drive a tqdm bar so a learner sees which lesson is running and, from the README's
    minutes per lesson, about how long the rest will take.
    """
    try:
        import myst_nb  # noqa: F401
        import sphinx  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"the site needs Sphinx and myst-nb ({exc.name} is missing): pip install -e \".[dev]\"") from None
    root = repo_root()
    url = repository_url(repository, root)
    out = Path(out).resolve()
    if out == root or root.is_relative_to(out):
        raise ConfigError(f"--out {out} would overwrite the course checkout; choose a folder such as build/site.")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder.")
    source = out.parent / f"{out.name}_source"
    cache = Path(cache).resolve()
    stems, to_execute = stage(root, source, execute, cache, timeout, solutions=solutions, url=url)
    minutes = lesson_minutes((root / "README.md").read_text(encoding="utf-8"))
    cached = {doc for doc in to_execute if _cached(cache, source / f"{doc}.ipynb")}
    remaining = estimate_minutes(to_execute, minutes, cached)
    if progress:
        print(f"site: executing {len(to_execute) - len(cached)} notebook(s) ({len(cached)} more cached); "
              f"about {remaining:.1f} min on an idle 2-core CPU (the README's minutes per lesson)", file=sys.stderr)
    n_docs = 1 + sum(len(v) for v in stems.values()) + sum((root / e).is_file() for e in EXTRA_PAGES)
    tmp_out = out.parent / f"{out.name}.partial"
    if tmp_out.exists():
        shutil.rmtree(tmp_out)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", str(source), str(tmp_out)]
    started = time.monotonic()
    from tqdm.auto import tqdm

    bar = tqdm(total=n_docs, unit="page", desc="site", disable=not progress)
    executed: list[str] = []
    log: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=root) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            if "Executing:" in line or "Executed notebook" in line:
                executed.append(line.strip())
            m = _PROGRESS.match(line.strip())
            if m:
                doc = m.group(2)
                if doc in to_execute and doc not in cached:  # this one runs now: count it as left until the next
                    cached.add(doc)
                    left = remaining
                    remaining -= minutes.get(doc.split("/", 1)[1], 0.0)
                else:
                    left = remaining
                bar.set_postfix_str(f"{doc[-40:]}, ~{left:.0f} min left" if left >= 0.5 else doc[-40:])
                bar.update(1)
    bar.close()
    if proc.returncode != 0:
        tail = "".join(log[-25:])
        raise ConfigError(f"the site build failed (sphinx exit {proc.returncode}); the end of its log:\n{tail}")
    if out.exists():
        shutil.rmtree(out)
    tmp_out.rename(out)  # never leave a half-written site where the last good one was
    pages = len(list(out.rglob("*.html")))
    return SiteBuild(out=out, seconds=time.monotonic() - started, pages=pages, executed=executed)


# --------------------------------------------------------------------------------------------
# Checks on a built site
# --------------------------------------------------------------------------------------------


class _Refs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.ids: set[str] = set()
        self.classes: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        self.classes.update((a.get("class") or "").split())
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])


def _parse(page: Path) -> _Refs:
    refs = _Refs()
    refs.feed(page.read_text(encoding="utf-8", errors="replace"))
    return refs


@dataclass
class SiteReport:
    """What :func:`check_site` found: one line per problem, and per lesson page how many images it shows."""

    problems: list[str]
    images_per_page: dict[str, int]


PLOTTING = re.compile(r"\bplt\.|matplotlib|\bplot_[a-z_]+\(|\.plot\(|\.imshow\(|\.hist\(")


def plots(notebook: Path) -> bool:
    """Whether a notebook's code draws (matplotlib, the course's plot_* helpers)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    return any(cell.cell_type == "code" and PLOTTING.search(cell.source) for cell in nb.cells)


def check_site(site: Path, root: Path | None = None, *, allow_unexecuted: bool = False) -> SiteReport:
    """A page per notebook, every image file present, every internal link (and #anchor) resolving, and
    every lesson whose notebook plots showing an image. A lesson page that says it was rendered without
    outputs (``--execute`` left it out) passes that last check only with ``allow_unexecuted``."""
    site = Path(site)
    root = root or repo_root()
    problems: list[str] = []
    if not (site / "index.html").is_file():
        return SiteReport([f"{site} has no index.html: was the site built?"], {})
    for folder, stems in notebook_stems(root).items():
        for stem in stems:
            if not (site / folder / f"{stem}.html").is_file():
                problems.append(f"no page for {folder}/{stem}.ipynb")
    parsed = {page: _parse(page) for page in site.rglob("*.html") if "_static" not in page.parts}
    images: dict[str, int] = {}
    for page, refs in parsed.items():
        rel = page.relative_to(site).as_posix()
        images[rel] = sum("_static/" not in src for src in refs.images)  # the page's own, not the theme's icons
        for src in refs.images:
            parts = urlsplit(src)
            if parts.scheme in ("http", "https", "data") or src.startswith("//"):
                continue
            if not (page.parent / unquote(parts.path)).resolve().is_file():
                problems.append(f"{rel}: image {src} does not exist")
        for href in refs.links:
            parts = urlsplit(href)
            if parts.scheme or href.startswith(("//", "mailto:")):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{rel}: link {href} points to a missing file")
            elif parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if parts.fragment not in ids:
                    problems.append(f"{rel}: link {href} points to a missing anchor")
    for stem in notebook_stems(root)["notebooks"]:
        page = site / "notebooks" / f"{stem}.html"
        if page not in parsed or images.get(f"notebooks/{stem}.html", 0) or not plots(root / "notebooks" / f"{stem}.ipynb"):
            continue
        if NO_OUTPUTS_CLASS not in parsed[page].classes:
            problems.append(f"notebooks/{stem}.html: the lesson plots but its page shows no image")
        elif not allow_unexecuted:
            problems.append(f"notebooks/{stem}.html: rendered without outputs, so its plots are missing; build without "
                            "--execute (or pass --allow-unexecuted to check a partial build)")
    return SiteReport(problems, images)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("build", "check"), help="build: render the site; check: verify a built one")
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_OUT,
                        help=f"where the site goes (build) or is (check); default {DEFAULT_OUT}")
    parser.add_argument("--execute", nargs="+", metavar="NN_topic",
                        help="execute only these notebooks (e.g. 00_setup exercises/04_evaluation_metrics); the others "
                             "are rendered without outputs, and the build's check allows that. Default: execute every "
                             "lesson (cached between builds); exercises are rendered unexecuted.")
    parser.add_argument("--solutions", action="store_true", help="execute the solutions too (about as long as the lessons)")
    parser.add_argument("--repository-url", metavar="URL",
                        help=f"GitHub repository for Colab/Binder launch buttons and a repository link (default: "
                             f"${REPOSITORY_ENV}, else [tool.course-site] repository_url in pyproject.toml; empty: none)")
    parser.add_argument("--allow-unexecuted", action="store_true",
                        help="check: let lesson pages that say they were rendered without outputs pass")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help=f"jupyter-cache folder: an unchanged notebook is not executed again (default {DEFAULT_CACHE})")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per notebook (default 1200)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.action == "check":
        report = check_site(args.folder, allow_unexecuted=args.allow_unexecuted)
        for problem in report.problems:
            print(f"  {problem}")
        lessons = {k: v for k, v in report.images_per_page.items() if k.startswith("notebooks/")}
        print(f"{len(report.images_per_page)} pages, {sum(lessons.values())} images on lesson pages, "
              f"{len(report.problems)} problem(s)")
        return 1 if report.problems else 0
    result = build(args.folder, execute=args.execute, cache=args.cache, timeout=args.timeout,
                   progress=not args.no_progress, solutions=args.solutions, repository=args.repository_url)
    report = check_site(result.out, allow_unexecuted=args.execute is not None or args.allow_unexecuted)
    print(f"built {result.pages} pages in {result.seconds:.0f} s: {result.out / 'index.html'}")
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)
    if report.problems:
        print(f"{len(report.problems)} problem(s) in the built site.", file=sys.stderr)
        return 1
    return 0
