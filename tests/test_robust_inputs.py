"""`prepare`, `apply` and `eval` over the bad-input corpus (`test_robust_corpus.py`), one real
subprocess per command: each case's outcome, the exit code, a one-line reason naming every skipped
file, no traceback, and the rest of the batch done."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_robust_corpus import (
    CASES,
    PHOTO_OF,
    PROCESSED,
    Case,
    make_corpus,
    permissions_enforced,
)

from colorize_cli.imaging import color, images
from colorize_cli.imaging.images import display_path

MISSING = "missing.jpg"


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: bytes
    stderr: str  # decoded with surrogateescape, as Python decodes file names

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


def colorize(*args: str | Path) -> Run:
    result = subprocess.run(
        [sys.executable, "-m", "colorize_cli", *map(str, args)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    stderr = result.stderr.decode("utf-8", "surrogateescape")
    return Run(result.returncode, result.stdout, stderr)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def expected(case: Case, corpus: Path) -> str:
    if case.name == "locked.jpg" and not permissions_enforced(corpus / case.name):
        return PROCESSED  # root reads it
    return case.outcome


def photo(case: Case, corpus: Path) -> Path:
    return corpus / PHOTO_OF.get(case.name, case.name)


def skipped(corpus: Path) -> list[Case]:
    return [case for case in CASES if expected(case, corpus) != PROCESSED]


def processed(corpus: Path) -> list[Case]:
    return [case for case in CASES if expected(case, corpus) == PROCESSED]


@pytest.fixture(scope="module")
def prepared(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    out = tmp_path_factory.mktemp("prepared")
    run = colorize(
        "prepare", corpus, corpus / MISSING, out / "data.h5", "--size", "32",
        "--val-fraction", "0", "--jobs", "2", "--errors", out / "errors.tsv",
    )  # fmt: skip
    return run, out


@pytest.fixture(scope="module")
def applied(
    corpus: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Run, Path]:
    out = tmp_path_factory.mktemp("applied")
    run = colorize(
        "apply", corpus, corpus / MISSING, "--out-dir", out, "--format", "png",
        "--model", tiny_model, "--render-size", "64",
    )  # fmt: skip
    return run, out


@pytest.fixture(scope="module")
def evaluated(
    corpus: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Run, dict, Path]:
    out = tmp_path_factory.mktemp("evaluated")
    run = colorize(
        "eval", tiny_model, corpus, "--render-size", "64", "--json",
        "--per-image", out / "scores.csv", "--sheet", out / "sheet.png",
    )  # fmt: skip
    return run, json.loads(run.stdout), out


def _flat(text: str) -> str:
    """Whitespace collapsed: what a reader of wrapped lines sees."""
    return " ".join(text.split())


def test_prepare_exit_code_outputs_and_errors_file(corpus: Path, prepared: tuple[Run, Path]):
    run, out = prepared
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stdout.decode().splitlines() == [str(out / "data.h5")]
    with h5py.File(out / "data.h5", "r") as f:
        assert f["rgb"].shape == (len(processed(corpus)), 32, 32, 3)
    with open(out / "errors.tsv", encoding="utf-8", errors="surrogateescape", newline="") as fp:
        rows = list(csv.reader(fp, delimiter="\t"))
    assert rows[0] == ["path", "reason"]
    reasons = dict(rows[1:])
    for case in skipped(corpus):
        assert expected(case, corpus) in reasons[str(photo(case, corpus))]
    assert len(rows) == 1 + len(skipped(corpus))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.what)
def test_prepare_outcome(case: Case, corpus: Path, prepared: tuple[Run, Path]) -> None:
    run, out = prepared
    with h5py.File(out / "data.h5", "r") as f:
        sources = list(f["source"].asstr()[:])
    stored = os.fsencode(photo(case, corpus)).decode("utf-8", "backslashreplace")
    outcome = expected(case, corpus)
    if outcome == PROCESSED:
        assert sources.count(stored) == 1
        return
    assert stored not in sources
    line = f"skipped {display_path(photo(case, corpus))}: "
    assert any(row.startswith(line) and outcome in row for row in run.lines), run.stderr


def test_apply_exit_code_and_stdout(corpus: Path, applied: tuple[Run, Path]) -> None:
    run, out = applied
    assert run.returncode == 1 and "Traceback" not in run.stderr
    written = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(written) == len(processed(corpus))
    for path in written:
        # Printed as the file name's own bytes (a name holding a newline spans two lines).
        assert os.fsencode(path) + b"\n" in run.stdout


def apply_output(case: Case, corpus: Path, out: Path) -> Path:
    return (out / photo(case, corpus).relative_to(corpus)).with_suffix(".png")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.what)
def test_apply_outcome(case: Case, corpus: Path, applied: tuple[Run, Path]) -> None:
    run, out = applied
    output = apply_output(case, corpus, out)
    outcome = expected(case, corpus)
    if outcome == PROCESSED:
        source_gray = color.grayscale(images.read_image(photo(case, corpus)))
        np.testing.assert_array_equal(color.grayscale(images.read_image(output)), source_gray)
        return
    assert not output.exists()
    flat = _flat(run.stderr)
    start = flat.index(f"failed: {images.display_path(photo(case, corpus))}: ")
    assert outcome in flat[start:].split(" failed: ")[0]


def test_eval_exit_code_and_reports(corpus: Path, evaluated: tuple[Run, dict, Path]) -> None:
    run, report, out = evaluated
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert report["images"] == len(processed(corpus))
    assert len(report["failed"]) == len(skipped(corpus)) - 1  # missing.jpg is not among them
    with open(out / "scores.csv", encoding="utf-8", errors="surrogateescape", newline="") as fp:
        assert len(list(csv.reader(fp))) == 1 + len(processed(corpus))
    assert (out / "sheet.png").stat().st_size > 0


@pytest.mark.parametrize("case", [c for c in CASES if c.name != MISSING], ids=lambda c: c.what)
def test_eval_outcome(case: Case, corpus: Path, evaluated: tuple[Run, dict, Path]) -> None:
    _, report, out = evaluated
    name = str(photo(case, corpus))
    with open(out / "scores.csv", encoding="utf-8", errors="surrogateescape", newline="") as fp:
        scored = [row["image"] for row in csv.DictReader(fp)]
    failed = {entry["image"]: entry["reason"] for entry in report["failed"]}
    outcome = expected(case, corpus)
    if outcome == PROCESSED:
        assert scored.count(name) == 1 and name not in failed
    else:
        assert name not in scored and outcome in failed[name]


def test_eval_refuses_a_named_photo_that_does_not_exist(corpus: Path, tiny_model: Path) -> None:
    run = colorize("eval", tiny_model, corpus / "colour.jpg", corpus / MISSING)
    assert run.returncode == 2 and run.stdout == b""
    assert run.lines == [f"error: {corpus / MISSING}: no such file or directory"]


@pytest.mark.parametrize(
    ("command", "prefix"),
    [
        ("prepare", "skipped"),
        ("apply", "failed:"),
        ("eval", "failed:"),
    ],
)
def test_every_skipped_file_is_named_on_one_line(
    command: str, prefix: str, corpus: Path, request: pytest.FixtureRequest
) -> None:
    run = request.getfixturevalue(
        {"prepare": "prepared", "apply": "applied"}.get(command, "evaluated")
    )[0]
    for case in skipped(corpus):
        if command == "eval" and case.name == MISSING:
            continue
        line = f"{prefix} {display_path(photo(case, corpus))}: "
        assert any(row.startswith(line) and expected(case, corpus) in row for row in run.lines), (
            f"{case.what}: no one-line reason naming {display_path(photo(case, corpus))}"
        )
