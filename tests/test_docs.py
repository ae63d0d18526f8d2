"""The docs a user reads: every planner and model has its page, and every relative link in
the README, BENCHMARKS.md and docs/ leads to a file (and heading) that exists."""

import re
from pathlib import Path

import pytest

from dynaplan.planners import PLANNERS
from dynaplan.types import DYNAMICS_MODELS

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "BENCHMARKS.md", *ROOT.glob("docs/**/*.md"),
                *ROOT.glob("benchmarks/*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")
PLANNER_PAGES = {"random": "random_shooting", "cem": "cem", "icem": "icem", "mppi": "mppi"}
MODEL_PAGES = {"mlp": "seed_mlp", "ensemble": "ensemble", "deterministic-ensemble": "ensemble"}


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings."""
    out = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            title = re.sub(r"[^\w\- ]", "", title)
            out.add(title.replace(" ", "-"))
    return out


def test_every_planner_and_model_has_its_page():
    assert set(PLANNER_PAGES) == set(PLANNERS)
    assert set(MODEL_PAGES) == set(DYNAMICS_MODELS)
    for name in PLANNER_PAGES.values():
        assert (ROOT / "docs" / "planners" / f"{name}.md").is_file(), name
    for name in MODEL_PAGES.values():
        assert (ROOT / "docs" / "models" / f"{name}.md").is_file(), name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    assert not broken, broken
