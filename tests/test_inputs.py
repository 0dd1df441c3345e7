"""Tests for imaging/inputs.py: files, directories, globs and stdin lists -> photo paths."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from colorize_cli.imaging.inputs import IMAGE_EXTENSIONS, expand_inputs


def test_expand_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("b.jpg", "a.PNG", "sub/c.jpeg", "sub/notes.txt", ".hidden/d.jpg", "sub/.e.jpg"):
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_bytes(b"x")
    Path("notes.txt").write_bytes(b"x")
    os.symlink("..", "sub/loop")  # a directory symlink loop

    paths, problems = expand_inputs(["."])
    assert paths == [Path("a.PNG"), Path("b.jpg"), Path("sub/c.jpeg")]
    assert problems == []

    paths, problems = expand_inputs(["notes.txt", "*.jpg", "**/*.jpeg", "b.jpg", "missing.jpg"])
    assert paths == [Path("notes.txt"), Path("b.jpg"), Path("sub/c.jpeg")]
    assert problems == [("missing.jpg", "no such file or directory")]

    # Directory symlinks are followed, but no directory is entered twice.
    paths, problems = expand_inputs(["*.gif", "sub", str(tmp_path / "*.png")])
    assert paths == [Path("sub/c.jpeg"), Path("sub/loop/a.PNG"), Path("sub/loop/b.jpg")]
    assert problems == [
        ("*.gif", "glob matched nothing"),
        (str(tmp_path / "*.png"), "glob matched nothing"),
    ]

    paths, problems = expand_inputs(["-"], stdin=io.StringIO("sub/c.jpeg\n\nnotes.txt\n*.jpg\n"))
    assert paths == [Path("sub/c.jpeg"), Path("notes.txt")]
    assert problems == [("*.jpg", "no such file or directory")]

    Path("empty").mkdir()
    assert expand_inputs(["empty"]) == ([], [("empty", "no images in directory")])


def test_image_extensions_are_lower_case_suffixes() -> None:
    assert {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"} <= IMAGE_EXTENSIONS
    assert all(ext.startswith(".") and ext == ext.lower() for ext in IMAGE_EXTENSIONS)


def test_null_separated_stdin_keeps_newlines_in_names(tmp_path: Path) -> None:
    odd = tmp_path / "two\nlines.jpg"
    odd.write_bytes(b"x")
    listing = io.StringIO(f"{odd}\0{tmp_path / 'missing.jpg'}\0")
    paths, problems = expand_inputs(["-"], stdin=listing, null_separated=True)
    assert paths == [odd]
    assert problems == [(str(tmp_path / "missing.jpg"), "no such file or directory")]
