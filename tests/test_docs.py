"""The repository's docs stand alone: every relative link points at a file of the repository, and nothing refers
to files that only exist outside it."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
OUTSIDE = ("../shared", "shared/method.md", "seed-paper.txt", "docs/environment.md", "beside this file")


def test_relative_links_resolve():
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).resolve().exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert not broken, "broken links:\n  " + "\n  ".join(broken)


def test_nothing_refers_to_files_outside_the_repository():
    files = DOCS + [ROOT / "requirements-ros-wheels.txt", ROOT / "requirements.txt"] + \
        [p for p in (ROOT / "src").rglob("*.py") if ".venv" not in p.parts]
    found = [f"{p.relative_to(ROOT)}: {needle}" for p in files for needle in OUTSIDE if needle in p.read_text()]
    assert not found, "\n".join(found)
