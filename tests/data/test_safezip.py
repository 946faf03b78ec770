"""Safe extraction: path tricks, symlinks and zip bombs are refused at both zip levels."""

from __future__ import annotations

import io
import random
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from bibcrop.atomic import TEMP_MARK
from bibcrop.data.safezip import (
    UnsafeArchiveError,
    ZipLimits,
    extract_archives,
    remove_stale_dirs,
)

LIMITS = ZipLimits(max_members=100, max_total_bytes=50_000_000, max_compression_ratio=200)


def zip_bytes(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    """A deflated zip in memory; ``symlinks`` maps member name -> link target."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)  # ZipInfo keeps the name as given ('..', '/', 'C:')
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def nested(outer_dir: str, inner: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    """LIP's shape: ``X.zip`` holding ``X/X.zip`` (the inner zip) and maybe other files."""
    return zip_bytes({f"{outer_dir}/{outer_dir}.zip": inner, **(extra or {})})


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_nested_zip_becomes_folders_and_source_is_untouched(tmp_path):
    inner = zip_bytes({"X/train_images/a.jpg": b"jpeg", "X/train_id.txt": b"a\n"})
    src = write(tmp_path / "src" / "X.zip", nested("X", inner))
    before = src.read_bytes()

    (folder,) = extract_archives([src], tmp_path / "work", LIMITS)

    assert folder == tmp_path / "work" / "X"
    assert (folder / "X" / "X.zip!" / "X" / "train_images" / "a.jpg").read_bytes() == b"jpeg"
    assert not list(folder.rglob("*.zip")), "the inner zip is replaced by its folder"
    assert src.read_bytes() == before
    assert not [p for p in (tmp_path / "work").iterdir() if TEMP_MARK in p.name]


BAD_MEMBERS = {
    "dotdot": ("../escape.txt", "'..'"),
    "deep-dotdot": ("X/../../escape.txt", "'..'"),
    "absolute": ("/tmp/escape.txt", "absolute path"),
    "drive": ("C:/escape.txt", "drive letter"),
    "drive-backslash": ("C:\\escape.txt", "drive letter"),
}


@pytest.mark.parametrize("level", ["outer", "inner"])
@pytest.mark.parametrize("case", sorted(BAD_MEMBERS))
def test_bad_member_names_are_refused_at_both_levels(tmp_path, level, case):
    member, why = BAD_MEMBERS[case]
    bad = zip_bytes({"ok.txt": b"fine", member: b"evil"})
    archive = bad if level == "outer" else nested("X", bad)
    src = write(tmp_path / "src" / "X.zip", archive)

    with pytest.raises(UnsafeArchiveError) as err:
        extract_archives([src], tmp_path / "deep" / "work", LIMITS)

    msg = str(err.value)
    assert msg.startswith("X.zip!/X/X.zip:" if level == "inner" else "X.zip:")
    assert repr(member) in msg and why in msg and "re-download" in msg
    assert not list(tmp_path.rglob("escape.txt")), "nothing written outside the work folder"
    assert not (tmp_path / "deep" / "work" / "X").exists(), "a refused archive leaves nothing"
    assert list((tmp_path / "deep" / "work").iterdir()) == []


@pytest.mark.parametrize("level", ["outer", "inner"])
def test_symlink_member_is_refused(tmp_path, level):
    bad = zip_bytes({"ok.txt": b"fine"}, symlinks={"link": "/etc/passwd"})
    src = write(tmp_path / "X.zip", bad if level == "outer" else nested("X", bad))
    with pytest.raises(UnsafeArchiveError, match=r"'link' is a symbolic link"):
        extract_archives([src], tmp_path / "work", LIMITS)
    assert not (tmp_path / "work" / "X").exists()


@pytest.mark.parametrize("level", ["outer", "inner"])
def test_zip_bomb_ratio_is_refused(tmp_path, level):
    bomb = zip_bytes({"zeros.bin": bytes(8_000_000)})  # ~8 kB compressed, ~1000x
    src = write(tmp_path / "X.zip", bomb if level == "outer" else nested("X", bomb))
    with pytest.raises(UnsafeArchiveError, match=r"'zeros.bin' expands \d+x.*zip bomb") as err:
        extract_archives([src], tmp_path / "work", LIMITS)
    assert "extract.max_compression_ratio" in str(err.value)
    assert not (tmp_path / "work" / "X").exists()


def test_total_bytes_cap_counts_across_nesting_levels(tmp_path):
    """Each level alone fits under the cap; together (inner zip + its contents) they do not."""
    rng = random.Random(0)
    payload = {f"f{i}.bin": rng.randbytes(10_000) for i in range(4)}  # incompressible, 40 kB
    inner = zip_bytes(payload)
    src = write(tmp_path / "X.zip", nested("X", inner))
    limits = ZipLimits(max_members=100, max_total_bytes=45_000, max_compression_ratio=1e9)
    with pytest.raises(UnsafeArchiveError, match=r"extract.max_total_bytes=45000"):
        extract_archives([src], tmp_path / "work", limits)
    roomy = ZipLimits(max_members=100, max_total_bytes=200_000, max_compression_ratio=1e9)
    (folder,) = extract_archives([src], tmp_path / "work", roomy)
    assert len(list(folder.rglob("*.bin"))) == 4


def test_member_count_cap(tmp_path):
    src = write(tmp_path / "X.zip", zip_bytes({f"{i}.txt": b"x" for i in range(12)}))
    limits = ZipLimits(max_members=10, max_total_bytes=10**9, max_compression_ratio=200)
    with pytest.raises(UnsafeArchiveError, match=r"extract.max_members=10"):
        extract_archives([src], tmp_path / "work", limits)


def test_lying_size_header_cannot_bypass_the_caps(tmp_path):
    """The header claims 100 bytes for a 1 MB member: the copy stops and the archive is refused."""
    raw = bytearray(zip_bytes({"a.bin": bytes(1_000_000)}))
    struct.pack_into("<I", raw, 22, 100)  # local header: uncompressed size
    central = raw.find(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, 100)  # central directory: uncompressed size
    src = write(tmp_path / "X.zip", bytes(raw))
    with pytest.raises(UnsafeArchiveError, match=r"X.zip: member 'a.bin'"):
        extract_archives([src], tmp_path / "work", LIMITS)
    assert not (tmp_path / "work" / "X").exists()


def test_zips_nested_too_deep_are_refused(tmp_path):
    """Three levels (LIP has two) are allowed; a fourth is refused."""
    level3 = zip_bytes({"c.zip": zip_bytes({"d.txt": b"d"})})
    (folder,) = extract_archives(
        [write(tmp_path / "ok.zip", zip_bytes({"b.zip": level3}))], tmp_path / "work", LIMITS
    )
    assert (folder / "b.zip!" / "c.zip!" / "d.txt").read_bytes() == b"d"
    level4 = zip_bytes({"c.zip": zip_bytes({"d.zip": zip_bytes({"e.txt": b"e"})})})
    src = write(tmp_path / "X.zip", zip_bytes({"b.zip": level4}))
    with pytest.raises(UnsafeArchiveError, match=r"X.zip!/b.zip!/c.zip!/d.zip: zips nested more"):
        extract_archives([src], tmp_path / "work", LIMITS)


def test_not_a_zip_names_the_file_and_the_fix(tmp_path):
    src = write(tmp_path / "X.zip", b"this is not a zip")
    with pytest.raises(UnsafeArchiveError, match=r"X.zip: not a readable zip.*re-download"):
        extract_archives([src], tmp_path / "work", LIMITS)


def test_duplicate_member_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("a.txt", b"1")
        zf.writestr("a.txt", b"2")
    src = write(tmp_path / "X.zip", buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match=r"'a.txt' appears twice"):
        extract_archives([src], tmp_path / "work", LIMITS)


def test_rerun_replaces_the_folder_and_stale_temp_dirs_are_removed(tmp_path):
    src = write(tmp_path / "X.zip", zip_bytes({"a.txt": b"new"}))
    work = tmp_path / "work"
    write(work / "X" / "old.txt", b"from an earlier run")
    stale = work / f".X{TEMP_MARK}123-abcd"
    write(stale / "half.txt", b"killed mid-extract")

    assert remove_stale_dirs(work) == 1
    (folder,) = extract_archives([src], work, LIMITS)

    assert sorted(p.name for p in folder.iterdir()) == ["a.txt"]
    assert not stale.exists()
