"""fsutil.py: swapping a finished folder in (a SavedModel export) keeps the old one until the new
one is in place, and puts it back when the new one cannot be moved in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from colorize_cli import fsutil


def _folder(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "saved_model.pb").write_text(text)
    return path


def test_replace_folder_swaps_in_the_new_one_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = _folder(tmp_path / "model", "old")
    fsutil.replace_folder(_folder(tmp_path / "finished", "new"), target)
    assert (target / "saved_model.pb").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    fsutil.replace_folder(_folder(tmp_path / "again", "newer"), tmp_path / "fresh")
    assert (tmp_path / "fresh" / "saved_model.pb").read_text() == "newer"
    (tmp_path / "file").write_text("a file where the folder goes")
    fsutil.replace_folder(_folder(tmp_path / "third", "x"), tmp_path / "file")
    assert (tmp_path / "file" / "saved_model.pb").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "fresh", "model"]


def test_replace_folder_puts_the_old_one_back_when_the_new_one_cannot_move_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _folder(tmp_path / "model", "old")
    finished = _folder(tmp_path / "finished", "new")
    real = os.replace

    def failing(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> None:
        if Path(source) == finished:
            raise OSError(28, "No space left on device")
        real(source, destination)

    monkeypatch.setattr(fsutil.os, "replace", failing)
    with pytest.raises(OSError, match="No space left"):
        fsutil.replace_folder(finished, target)
    assert (target / "saved_model.pb").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finished", "model"]


def test_interrupts_held_end_the_block_whole_then_interrupt() -> None:
    import signal

    done = []
    with pytest.raises(KeyboardInterrupt), fsutil.interrupts_held():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("after the signal")
    assert done == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
