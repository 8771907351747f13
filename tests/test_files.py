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
    with pytest.raises(OSError) as caught:  # its temporary file cannot even be made there
        files.write_text(tmp_path / "gone" / "table.md", "| a |\n")
    assert caught.value.filename == str(tmp_path / "gone" / "table.md") and caught.value.errno == errno.ENOENT


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


def test_an_output_replaces_only_a_file_of_its_own_kind(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    fig, _ = plt.subplots()
    files.save_figure(fig, tmp_path / "curve", dpi=50)
    plt.close(fig)
    files.write_json(tmp_path / "results.json", {"runs": []})
    files.write_text(tmp_path / "table.md", "| agent | seeds |\n|---|---:|\n")
    (tmp_path / "empty.json").write_bytes(b"")
    torch.save({"model": {"w": torch.zeros(2)}}, tmp_path / "best.pt")
    (tmp_path / "README.md").write_text("# My project\n\nNotes.\n")
    (tmp_path / "photo.png").write_bytes(b"\xff\xd8\xff\xe0 a JPEG named .png")
    (tmp_path / "notes.svg").write_text("not a drawing")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "graph.nir").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))  # NIR writes HDF5
    (tmp_path / "model.nir").write_bytes((tmp_path / "best.pt").read_bytes())
    may = ["curve.png", "curve.svg", "graph.nir", "results.json", "table.md", "absent.json"]
    assert {name: files.why_not_replace(tmp_path / name, ("runs",)) for name in may} == dict.fromkeys(may)
    assert files.why_not_replace(tmp_path / "empty.json") is None  # nothing in it to lose
    assert files.why_not_replace(tmp_path / "empty.json", ("runs",)) == "is not a JSON object"  # to add to
    assert {
        name: files.why_not_replace(tmp_path / name, ("runs", "name"))
        for name in ["best.pt", "README.md", "photo.png", "notes.svg", "model.nir", "list.json", "results.json"]
    } == {
        "best.pt": "is not a JSON object",
        "README.md": "is not a table of this project (its first line is not a table row)",
        "photo.png": "is not a PNG image",
        "notes.svg": "is not an SVG image",
        "model.nir": "is not a NIR graph (an HDF5 file)",
        "list.json": "is not a JSON object",
        "results.json": "is JSON without 'name'",
    }
