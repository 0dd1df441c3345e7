"""The file side of `colorize apply`: which photos and videos, which output names, and the loop
that reads, colorizes (`Colorizer`, one model load per run) and writes them, one outcome per input.

Outputs: `-o FILE` for a single input, `--out-dir DIR` (names relative to the directory argument
an input was found under, else its file name), or by default `NAME.color.EXT` beside the input.
Photos go first, in batches; then each video, streamed frame by frame (`video.py`).
An input is never overwritten; an existing output is skipped unless `overwrite`. `colorize_bytes`
serves `colorize apply - -o -`: one encoded photo in, one encoded photo out (stdin to stdout).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

import numpy as np

from colorize_cli import fsutil
from colorize_cli.config import MAX_PIXELS, PHOTO_QUALITY, ApplyOptions
from colorize_cli.errors import ColorizeError, ImageError, UsageError
from colorize_cli.imaging import images
from colorize_cli.imaging.inputs import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, expand_inputs, is_video
from colorize_cli.inference import video
from colorize_cli.inference.colorizer import Colorizer
from colorize_cli.progress import NullProgress, ProgressSink

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
        elif output.exists() and not options.overwrite:
            known.append(Outcome(str(path), output, "skipped", "output exists (--overwrite)"))
        else:
            claimed[key] = path
            jobs.append(Job(path, output))
    return jobs, known


def _directory_bases(sources: Sequence[str]) -> list[Path]:
    """The folders whose relative layout --out-dir keeps: directory arguments and glob roots."""
    bases = []
    for source in sources:
        path = Path(source)
        if source != "-" and path.is_dir():
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
    try:
        images.output_format(path)
    except ImageError:
        return f".{FALLBACK_FORMAT}"
    return path.suffix


def apply(
    options: ApplyOptions,
    progress: ProgressSink | None = None,
    stdin: TextIO | None = None,
    colorizer: Colorizer | None = None,
) -> Iterator[Outcome]:
    """Colorize every input photo and video into its output file, yielding one Outcome per input.

    Outcomes known up front (missing inputs, skipped outputs) come first, then one per photo as it
    is written, then one per video; an input that fails does not stop the others. The model is
    loaded once, and only when some input needs it (a ModelError then ends the run). `colorizer`
    reuses a loaded one.
    """
    progress = progress or NullProgress()
    if options.output is not None and str(options.output) == "-":
        raise UsageError("-o - streams one photo: use colorize_bytes")
    jobs, known = plan(options, stdin)
    yield from known
    if not jobs:
        return
    colorizer = colorizer or Colorizer(
        options.model_path, options.render_size, options.batch_size, options.backend
    )
    photo_jobs = [job for job in jobs if not is_video(job.source)]
    if photo_jobs:
        yield from _apply_photos(photo_jobs, options, colorizer, progress)
    for job in jobs:
        if is_video(job.source):
            yield _apply_video(job, options, colorizer, progress)


def _apply_photos(
    jobs: list[Job], options: ApplyOptions, colorizer: Colorizer, progress: ProgressSink
) -> Iterator[Outcome]:
    progress.start("colorizing", total=len(jobs), unit="photos")
    failures: list[Outcome] = []
    photos = _read_photos(jobs, options.max_pixels, failures)
    written = 0
    for (job, info), rgb in colorizer.colorize_many(photos):
        yield from _drain(failures, progress)
        outcome = _write(job, rgb, info, options)
        written += outcome.status == "written"
        progress.advance(1)
        yield outcome
    yield from _drain(failures, progress)
    progress.finish(f"colorized {written} of {len(jobs)} photos")


def _apply_video(
    job: Job, options: ApplyOptions, colorizer: Colorizer, progress: ProgressSink
) -> Outcome:
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        report = video.colorize_video(
            job.source, job.output, colorizer, options.crf, options.stabilize, progress
        )
    except OSError as exc:
        progress.finish()
        return Outcome(
            str(job.source), job.output, "failed", f"cannot write: {fsutil.os_reason(exc)}"
        )
    except ColorizeError as exc:
        progress.finish()
        return Outcome(str(job.source), job.output, "failed", exc.reason)
    if report.left_out:
        progress.log(f"{job.source}: not copied: {', '.join(report.left_out)}")
    return Outcome(str(job.source), job.output, "written")


def _read_photos(
    jobs: Iterable[Job], max_pixels: int | None, failures: list[Outcome]
) -> Iterator[tuple[tuple[Job, images.ImageInfo], np.ndarray]]:
    """(job, info) tagged photos for `colorize_many`; unreadable ones land in `failures`."""
    for job in jobs:
        try:
            rgb, info = images.read_image_with_info(job.source, max_pixels)
        except ImageError as exc:
            failures.append(Outcome(str(job.source), job.output, "failed", exc.reason))
            continue
        yield (job, info), rgb


def _drain(failures: list[Outcome], progress: ProgressSink) -> Iterator[Outcome]:
    while failures:
        progress.advance(1)
        yield failures.pop(0)


def _write(job: Job, rgb: np.ndarray, info: images.ImageInfo, options: ApplyOptions) -> Outcome:
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        images.write_image(
            job.output, rgb, options.format, options.quality, info.exif, info.icc_converted
        )
    except OSError as exc:
        return Outcome(
            str(job.source), job.output, "failed", f"cannot write: {fsutil.os_reason(exc)}"
        )
    except ColorizeError as exc:
        return Outcome(str(job.source), job.output, "failed", exc.reason)
    return Outcome(str(job.source), job.output, "written")


def colorize_bytes(
    data: bytes,
    colorizer: Colorizer,
    format: str | None = None,
    quality: int = PHOTO_QUALITY,
    name: str = "-",
    max_pixels: int | None = MAX_PIXELS,
) -> bytes:
    """One encoded photo in, the colorized photo encoded out (`colorize apply - -o -`).

    The output format is `format`, else the input's own when it can be written, else PNG; EXIF is
    carried over, and a photo that came with an ICC profile leaves tagged sRGB. Errors are
    ImageError named `name`.
    """
    rgb, info = images.read_image_with_info(data, max_pixels, name=name)
    if format is None:
        try:
            format = images.output_format(name, info.format)
        except ImageError:
            format = FALLBACK_FORMAT
    return images.encode_image(
        colorizer.colorize(rgb), format, quality, info.exif, info.icc_converted
    )
