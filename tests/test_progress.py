"""bibcrop.progress: plain lines when stderr is not a terminal, a tqdm bar when forced."""

from __future__ import annotations

from bibcrop.progress import counter, progress, status_line


def test_not_a_terminal_gives_plain_lines_with_count_rate_and_eta(capsys, monkeypatch):
    monkeypatch.delenv("BIBCROP_PROGRESS", raising=False)  # pytest's stderr is not a tty
    assert list(progress(range(5), "evaluate val", unit="image", every_s=0.0)) == [0, 1, 2, 3, 4]
    lines = capsys.readouterr().err.splitlines()
    assert "\r" not in "".join(lines)
    assert lines[0].startswith("evaluate val: 1/5 images, ") and "ETA" in lines[0]
    assert lines[-1].startswith("evaluate val: 5/5 images, ") and "done in" in lines[-1]


def test_lines_are_periodic_not_per_item(capsys, monkeypatch):
    monkeypatch.setenv("BIBCROP_PROGRESS", "lines")
    with counter("crop", "photo", total=1000, every_s=3600) as bar:
        for _ in range(1000):
            bar.update()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("crop: 1000/1000 photos, ")


def test_status_line_without_a_total():
    assert status_line("train", 10, None, "step", 5.0) == "train: 10 steps, 2 steps/s, done in 5s"


def test_forced_bar_and_off(capsys, monkeypatch):
    monkeypatch.setenv("BIBCROP_PROGRESS", "bar")
    assert sum(progress(range(3), "bar", unit="x")) == 3
    assert "3/3" in capsys.readouterr().err  # tqdm's own format
    monkeypatch.setenv("BIBCROP_PROGRESS", "off")
    assert sum(progress(range(3), "quiet")) == 3
    assert capsys.readouterr().err == ""
