"""dvc.yaml's code deps = the imports: a change to any file a stage runs reruns the stage."""

from __future__ import annotations

from pathlib import Path

import yaml

from bibcrop.cli import STAGES
from bibcrop.import_graph import code_files, package_dir

REPO = package_dir().parents[1]


def _stages() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def _code_deps(stage: dict) -> list[str]:
    return [d for d in stage["deps"] if isinstance(d, str) and d.startswith("src/")]


def uncovered(imported: list[Path], deps: list[str]) -> list[str]:
    """The imported files that no dep entry (a file, or a folder holding it) covers."""
    roots = [REPO / d for d in deps]
    return sorted(
        str(f.relative_to(REPO))
        for f in imported
        if not any(f == r or r in f.parents for r in roots)
    )


def stale(imported: list[Path], deps: list[str]) -> list[str]:
    """Dep entries that do not exist or cover no imported file."""
    return sorted(
        d for d in deps if not any(f == REPO / d or REPO / d in f.parents for f in imported)
    )


def test_every_stage_lists_the_code_it_imports():
    problems = []
    for name, stage in _stages().items():
        module = STAGES[stage["cmd"].split()[1]]
        imported = code_files([module])
        deps = _code_deps(stage)
        if missing := uncovered(imported, deps):
            problems.append(f"{name}: add to deps {missing}")
        if extra := stale(imported, deps):
            problems.append(f"{name}: deps {extra} are missing or not imported")
    assert not problems, "dvc.yaml code deps differ from the imports:\n" + "\n".join(problems)


def test_the_check_sees_a_missing_and_a_stale_entry():
    imported = code_files(["bibcrop.stages.crop"])
    deps = ["src/bibcrop/crop", "src/bibcrop/data/lip.py"]
    assert "src/bibcrop/inference/predict.py" in uncovered(imported, deps)
    assert stale(imported, deps) == ["src/bibcrop/data/lip.py"]
