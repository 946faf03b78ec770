"""Dependencies are pinned at or above their security fixes, and installed that way."""

from __future__ import annotations

from importlib.metadata import requires, version

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

# package -> the first release with the fixes we rely on
MINIMUMS = {
    "keras": "3.11.3",  # safe_mode bypasses: CVE-2025-1550, CVE-2025-8747, CVE-2025-9905
    "mlflow": "3.5",  # recent server/auth fixes; aliases instead of stages
    "pillow": "11.3",  # decoder fixes (e.g. CVE-2025-48379)
}


@pytest.mark.parametrize("package", sorted(MINIMUMS))
def test_declared_and_installed_at_or_above_the_fix(package):
    declared = [Requirement(r) for r in requires("bibcrop")]
    requirement = next(r for r in declared if r.name == package and not r.marker)
    floor = Version(MINIMUMS[package])
    lowest_allowed = [Version(s.version) for s in requirement.specifier if ">" in s.operator]
    assert lowest_allowed and min(lowest_allowed) >= floor, f"{requirement} allows < {floor}"
    assert Version(version(package)) >= floor
