"""Which photos and videos `colorize apply` takes and the file each goes to: the jobs to run and
the outcomes known before any work (`Job`, `Outcome`).

Outputs: `-o FILE` for a single input, `--out-dir DIR` (names relative to the directory argument
an input was found under, else its file name), or by default `NAME.color.EXT` beside the input.
An input is never overwritten; an existing output is skipped unless `overwrite`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from colorize_cli import fsutil
from colorize_cli.config import ApplyOptions
from colorize_cli.errors import ImageError, UsageError
from colorize_cli.imaging import writing
from colorize_cli.imaging.inputs import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, expand_inputs, is_video
from colorize_cli.inference import video

OUTPUT_SUFFIX = ".color"
# Used when a photo's own format cannot be written (GIF, PPM, AVIF...).
FALLBACK_FORMAT = "png"


@dataclass(frozen=True)
class Outcome:
    """What happened to one input: `written` (print `output` on stdout), `skipped` or `failed`."""

    source: str
    output: Path | None
    status: Literal["written", "skipped", "failed"]
    reason: str = ""


@dataclass(frozen=True)
class Job:
    """One photo or video to colorize and the file it goes to."""

    source: Path
    output: Path


def plan(options: ApplyOptions, stdin: TextIO | None = None) -> tuple[list[Job], list[Outcome]]:
    """The (photo, output) jobs to run, and the outcomes already known (missing, skipped...)."""
    paths, problems = expand_inputs(
        options.sources, stdin, options.null_separated, IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
    )
    known = [Outcome(source, None, "failed", reason) for source, reason in problems]
    if options.output is not None and len(paths) + len(problems) > 1:
        raise UsageError(f"-o names one output but {len(paths) + len(problems)} inputs were given")
    bases = _directory_bases(options.sources)
    outputs = {path: _output_path(path, options, bases) for path in paths}
    # A photo that another input of this run writes to is an earlier run's output found again
    # (`colorize apply photos/` twice): it is not colorized a second time.
    producer = {os.path.realpath(output): path for path, output in outputs.items()}
    inputs = set()
    for path in paths:
        by = producer.get(os.path.realpath(path), path)
        if by == path:
            inputs.add(os.path.realpath(path))
        else:
            known.append(Outcome(str(path), None, "skipped", f"it is the output of {by}"))
    jobs: list[Job] = []
    claimed: dict[str, Path] = {}
    for path, output in outputs.items():
        key = os.path.realpath(output)
        if os.path.realpath(path) not in inputs:
            continue
        if key in inputs:
            known.append(Outcome(str(path), output, "failed", "refusing to overwrite an input"))
        elif key in claimed:
            reason = f"same output as {claimed[key]}"
            known.append(Outcome(str(path), output, "failed", reason))
        elif is_video(path) and video.output_suffix(output) != output.suffix.lower():
            reason = f"a video is written as {', '.join(video.CONTAINERS)}, not {output.name}"
            known.append(Outcome(str(path), output, "failed", reason))
        elif (problem := _output_problem(output, options.overwrite)) is not None:
            known.append(Outcome(str(path), output, *problem))
        else:
            claimed[key] = path
            jobs.append(Job(path, output))
    return jobs, known


def _output_problem(
    output: Path, overwrite: bool
) -> tuple[Literal["skipped", "failed"], str] | None:
    """Why `output` cannot be written now (an existing one without `overwrite`, a name too long,
    a device or a link in its place), or None."""
    try:
        os.lstat(output)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return "failed", f"cannot write: {fsutil.os_reason(exc)}"
    if not overwrite:
        return "skipped", "output exists (--overwrite)"
    try:
        fsutil.check_replaceable(output)
    except OSError as exc:
        return "failed", f"cannot write: {fsutil.os_reason(exc)}"
    return None


def _directory_bases(sources: Sequence[str]) -> list[Path]:
    """The folders whose relative layout --out-dir keeps: directory arguments and glob roots."""
    bases = []
    for source in sources:
        path = Path(source)
        if source != "-" and os.path.isdir(path):
            bases.append(path)
        elif any(char in source for char in "*?["):
            parts = path.parts
            magic = next(i for i, part in enumerate(parts) if any(c in part for c in "*?["))
            bases.append(Path(*parts[:magic]) if magic else Path())
    return bases


def _output_path(path: Path, options: ApplyOptions, bases: list[Path]) -> Path:
    if options.output is not None:
        return Path(options.output)
    if options.out_dir is None:
        return path.with_name(f"{path.stem}{OUTPUT_SUFFIX}{_suffix(path, options.format)}")
    relative = next((path.relative_to(b) for b in bases if path.is_relative_to(b)), None)
    relative = relative or Path(path.name)
    return Path(options.out_dir) / relative.with_suffix(_suffix(path, options.format))


def _suffix(path: Path, format: str | None) -> str:
    """The output's extension: a video's by `video.output_suffix`; a photo's `format`'s, else its
    own if writable, else PNG's."""
    if is_video(path):
        return video.output_suffix(path)
    if format is not None:
        return f".{format.lower()}"
    return own_suffix(path)


def own_suffix(path: str | Path) -> str:
    """The extension a photo is written with when no format is asked for: its own if writable,
    else PNG's (`colorize apply` and the page's downloads)."""
    try:
        writing.output_format(path)
    except ImageError:
        return f".{FALLBACK_FORMAT}"
    return Path(path).suffix
