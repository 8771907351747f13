"""Files written whole or not at all."""

import errno
import json
import os
import stat

import pytest

from machinery import files


@pytest.mark.parametrize("fault", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_a_write_cut_short_leaves_the_earlier_file_as_it_was_and_no_temporary_file(fault, tmp_path):
    path = tmp_path / "report.json"
    files.write_json(path, {"return": 200.0})
    before = path.read_bytes()

    def half_then_fault(f):
        f.write(b'{"ret')
        raise fault

    with pytest.raises(type(fault)):
        files.write_atomically(path, half_then_fault)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_failed_write_names_the_file_it_was_writing(tmp_path, monkeypatch):
    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(OSError) as caught:
        files.write_text(tmp_path / "table.md", "| a |\n")
    assert caught.value.filename == str(tmp_path / "table.md") and caught.value.strerror == "No space left on device"
    assert not list(tmp_path.iterdir())


def test_a_new_file_gets_the_permissions_open_gives_not_owner_only_ones(tmp_path):
    umask = os.umask(0o022)  # the usual one: the group and others may read what open writes
    try:
        files.write_text(tmp_path / "new.md", "text")
        (tmp_path / "by-open.md").write_text("text")
    finally:
        os.umask(umask)
    mode = stat.S_IMODE((tmp_path / "new.md").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "by-open.md").stat().st_mode) == 0o644  # mkstemp's would be 0o600


def test_json_and_text_read_back_as_written(tmp_path):
    files.write_json(tmp_path / "a.json", {"runs": [1, 2.5, "x"]}, indent=1)
    assert (tmp_path / "a.json").read_text() == json.dumps({"runs": [1, 2.5, "x"]}, indent=1) + "\n"
    files.write_text(tmp_path / "b.md", "héllo\n")
    assert (tmp_path / "b.md").read_text(encoding="utf-8") == "héllo\n"


def test_a_figure_is_written_as_svg_and_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    files.save_figure(fig, tmp_path / "curve", dpi=50)
    plt.close(fig)
    assert (tmp_path / "curve.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["curve.png", "curve.svg"]
