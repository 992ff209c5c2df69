"""User-facing text speaks of the project only.

README.md, docs/**/*.md, src/**/*.py and benchmarks/*.py must not mention work orders ("the
issue", "issue 2"), how the work was organised ("sessions", "was lent"), or paths outside the
repository (temporary directories, the machine's work tree, a shared folder next to the checkout,
scratch copies). Plain text scanning: no JAX needed.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"\bissue \d",
        r"\bthe issue\b",
        r"\bsessions?\b",
        r"\bwas lent\b",
        r"/tmp/",
        r"/work/",
        r"\.\./shared",
        r"\bscratch (venv|copy|script|path)",
    )
]


def scanned_files(root: Path) -> list[Path]:
    """The files whose text users read: README, docs, library source and benchmarks."""
    files = [root / "README.md"]
    files += sorted((root / "docs").rglob("*.md"))
    files += sorted((root / "src").rglob("*.py"))
    files += sorted((root / "benchmarks").glob("*.py"))
    return [path for path in files if path.is_file()]


def find_hits(root: Path) -> list[str]:
    """``file:line: text`` for every line of a scanned file that matches a forbidden pattern."""
    hits = []
    for path in scanned_files(root):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if any(pattern.search(line) for pattern in FORBIDDEN):
                hits.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return hits


def test_scan_covers_the_user_facing_files():
    names = {path.relative_to(ROOT).as_posix() for path in scanned_files(ROOT)}
    assert "README.md" in names
    assert "docs/architecture.md" in names
    assert "src/learn2rl/__init__.py" in names
    assert any(name.startswith("benchmarks/") for name in names)


def test_patterns_catch_what_they_are_for():
    bad = [
        "Against the targets (issue 2)",
        "(paper -11.68; the issue: within 10%)",
        "The issue's rough numbers were",
        "shared with four other sessions",
        "not run this session",
        "No accelerator was lent to this task",
        "learn2rl demo --out /tmp/demo",
        "nice -n 5 /work/scratch/venv/bin/python",
        "see ../shared/PAPERS.md",
        "run with the scratch venv",
        "a scratch copy",
        "(a scratch script)",
    ]
    good = [
        "trained from scratch with the settings of the n = 10 cell",
        "an issue of numerical stability",
        "learn2rl demo --out runs/demo",
        "start_new_session=True",
    ]
    for text in bad:
        assert any(pattern.search(text) for pattern in FORBIDDEN), text
    for text in good:
        assert not any(pattern.search(text) for pattern in FORBIDDEN), text


def test_user_facing_text_speaks_of_the_project_only():
    hits = find_hits(ROOT)
    assert not hits, "text about work orders, sessions or outside paths:\n" + "\n".join(hits)
