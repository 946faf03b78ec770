"""The README and the documentation site (issue 29): the site builds in MkDocs' strict mode,
so a broken link or anchor, a page missing from the nav or a nav entry without its page
fails here; the README stays a five-minute read whose links land."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README_MAX_LINES = 200
QUICKSTART = (
    "make demo   # create .venv, install, run the whole pipeline (dvc repro) on the embedded "
    "synthetic data\n"
    "make test   # create or reuse .venv, then lint and run every test (slow ones included)\n"
)


def test_the_site_builds_strict_with_no_warning(repo_root, tmp_path):
    mkdocs = Path(sys.executable).parent / "mkdocs"
    # Material's notice about its end of life (printed on every build) says nothing about
    # this site's pages; the variable is the one it names to turn it off
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "PERFORMANCE.html").is_file()


def test_the_readme_is_short_keeps_its_two_commands_and_its_links_land(repo_root):
    text = (repo_root / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    assert QUICKSTART in text
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not re.match(r"^[a-z]+://", link)]
    assert "docs/index.md" in local
    missing = [link for link in local if not (repo_root / link).is_file()]
    assert not missing, f"README links to missing files: {missing}"
