"""The run of `colorize apply`: the loop that reads, colorizes (`Colorizer`, one model load per
run) and writes the inputs planning.py planned, one outcome per input.

Photos go first, in batches; then each video, streamed frame by frame (`video.py`). `colorize_bytes`
serves `colorize apply - -o -`: one encoded photo in, one encoded photo out (stdin to stdout).
"""

from __future__ import annotations

import functools
import os
import stat
import threading
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TextIO

import numpy as np

from colorize_cli import fsutil
from colorize_cli.config import MAX_PIXELS, PHOTO_QUALITY, ApplyOptions
from colorize_cli.errors import ColorizeError, ImageError, ModelError, UsageError, one_line
from colorize_cli.imaging import headers, hints, images, writing
from colorize_cli.imaging.chroma import output_image
from colorize_cli.imaging.hints import Guide
from colorize_cli.imaging.inputs import is_video
from colorize_cli.inference import video
from colorize_cli.inference.colorizer import BATCH_PIXEL_BUDGET, Colorizer
from colorize_cli.inference.guides import Guides
from colorize_cli.inference.planning import FALLBACK_FORMAT, Job, Outcome, plan
from colorize_cli.progress import NullProgress, ProgressSink

# At most this many pixels are being finished (full-size colour, encoding) beside the next
# batch's reading and network run; a larger photo is finished before the next one is read, so
# only one is ever held at full size.
FINISHING_PIXELS = BATCH_PIXEL_BUDGET


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
    guides = Guides(options.hints, options.reference, options.max_pixels)
    guides.check_inputs([job.source for job in jobs if not is_video(job.source)])
    yield from known
    if not jobs:
        return
    if colorizer is None:
        check_model_path(options.model_path)
        colorizer = Colorizer(
            options.model_path, options.render_size, options.batch_size, options.backend
        )
    if guides.given and not colorizer.takes_hints:
        raise UsageError(
            "this model takes no hints or reference (automatic colour only): use the bundled "
            "default or a model trained with --model lite0-hints",
            colorizer.model_path,
        )
    photo_jobs = [job for job in jobs if not is_video(job.source)]
    if photo_jobs:
        yield from _apply_photos(photo_jobs, options, colorizer, progress, guides)
    for job in jobs:
        if is_video(job.source):
            yield _apply_video(job, options, colorizer, progress, guides)


def check_model_path(path: str | os.PathLike[str] | None) -> None:
    """ModelError unless a model path is missing (the loader says so), a folder (a SavedModel) or
    a regular file: a named pipe would block the loader forever, /dev/zero would never end."""
    if path is None:
        return
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise ModelError(f"cannot read: {fsutil.os_reason(exc)}", path) from None
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise ModelError(fsutil.NOT_REGULAR, path)


def _apply_photos(
    jobs: list[Job],
    options: ApplyOptions,
    colorizer: Colorizer,
    progress: ProgressSink,
    guides: Guides,
) -> Iterator[Outcome]:
    progress.start("colorizing", total=len(jobs), unit="photos")
    # `yield from`, not a loop: an interrupt thrown in here (the CLI's, while it printed) reaches
    # the run, which still reports what it wrote.
    written = yield from _colorize_photos(jobs, options, colorizer, progress, guides)
    progress.finish(f"colorized {written} of {len(jobs)} photos")


def _colorize_photos(
    jobs: list[Job],
    options: ApplyOptions,
    colorizer: Colorizer,
    progress: ProgressSink,
    guides: Guides,
) -> Generator[Outcome, None, int]:
    """One outcome per job, in the jobs' order; returns how many photos were written. A batch
    that fails as a whole (out of memory, a model that cannot take one photo's shape) is retried
    photo by photo, so only the photo at fault fails, and the photos after it are still done."""
    failures: list[tuple[int, Outcome]] = []  # (index in jobs, outcome) of unreadable photos
    taken: list[Job] = []  # jobs the reader has taken, read or not
    started: list[Job] = []  # read and handed to the colorizer, not yet reported
    photos = _read_photos(jobs, options, failures, taken, started, guides)
    # Photos handed to the finishing thread (full-size colour, encoding, writing), which works
    # while the network runs on the next batch: (index, job, pixels, its outcome to come).
    finishing: deque[tuple[int, Job, int, Future[Outcome]]] = deque()
    abandon = threading.Event()  # set when the run stops early: queued photos are not written

    def settle(in_flight: int) -> Generator[Outcome, None, int]:
        """Outcomes of the finished photos, in order, waiting while more than `in_flight`
        pixels are being finished (a large photo is written before the next is read); returns
        how many were written."""
        written = 0
        while finishing and (
            finishing[0][3].done() or sum(item[2] for item in finishing) > in_flight
        ):
            index, job, _, future = finishing[0]
            outcome = future.result()  # left in `finishing` until then: an interrupt may come
            finishing.popleft()
            started.remove(job)
            yield from _drain(failures, progress, before=index)
            progress.advance(1)
            written += outcome.status == "written"
            yield outcome
        return written

    failure: MemoryError | ColorizeError | None = None
    written = 0
    finisher = ThreadPoolExecutor(1)
    try:
        try:
            for (index, job, info), gray, ab in colorizer.chroma_many(photos):
                future = finisher.submit(_finish, job, gray, ab, info, options, abandon)
                finishing.append((index, job, gray.size, future))
                del gray, ab  # held by the finishing thread alone from here
                written += yield from settle(FINISHING_PIXELS)
        except (MemoryError, ColorizeError) as exc:
            failure = exc
        # The photos already coloured are written whatever happened to the batch after them.
        written += yield from settle(-1)
    except GeneratorExit:
        abandon.set()  # closed early: nothing more is written, and nothing can be reported
        raise
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM) or a bug: what was not written yet is not written at all,
        # and what the finishing thread wrote before it is still reported, so what is on disk is
        # what was listed.
        abandon.set()
        finisher.shutdown(wait=True, cancel_futures=True)
        for _, _, _, future in finishing:
            if not future.cancelled() and future.result().status == "written":
                progress.advance(1)
                yield future.result()
        raise
    finally:
        finisher.shutdown(wait=True, cancel_futures=True)
    yield from _drain(failures, progress)
    if failure is None:
        return written
    rest = jobs[len(taken) :]
    if len(started) == 1:
        progress.advance(1)
        yield Outcome(str(started[0].source), started[0].output, "failed", _reason(failure))
    else:
        for job in started:
            written += yield from _colorize_photos([job], options, colorizer, progress, guides)
    written += yield from _colorize_photos(rest, options, colorizer, progress, guides)
    return written


def _reason(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "not enough memory to colorize this photo"
    return exc.reason if isinstance(exc, ColorizeError) else one_line(exc)


def _apply_video(
    job: Job, options: ApplyOptions, colorizer: Colorizer, progress: ProgressSink, guides: Guides
) -> Outcome:
    try:
        guide = guides.for_video(job.source)
        job.output.parent.mkdir(parents=True, exist_ok=True)
        report = video.colorize_video(
            job.source,
            job.output,
            colorizer,
            options.crf,
            options.stabilize,
            progress,
            guide,
            options.network_every,
            options.video_preset,
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
    jobs: Iterable[Job],
    options: ApplyOptions,
    failures: list[tuple[int, Outcome]],
    taken: list[Job],
    started: list[Job],
    guides: Guides,
) -> Iterator[tuple[tuple[int, Job, images.ImageInfo], np.ndarray, Guide]]:
    """(index, job, info) tagged grays for `chroma_many` (the output keeps the gray alone, so the
    photo is read as its gray, never held as a whole RGB array); each job lands in `taken`, and
    then in `failures` if unreadable or too large to write, else in `started` until reported."""
    for index, job in enumerate(jobs):
        taken.append(job)
        try:
            pil_format = writing.output_format(job.output, options.format)
            check_header = functools.partial(_check_header, pil_format)
            gray, info = images.read_gray_with_info(
                job.source, options.max_pixels, check_header=check_header
            )
            writing.check_writable(gray.shape, pil_format)
            guide = guides.for_photo(job.source, gray.shape)
        except ColorizeError as exc:
            failures.append((index, Outcome(str(job.source), job.output, "failed", exc.reason)))
            continue
        except MemoryError:
            reason = "not enough memory to read this photo"
            failures.append((index, Outcome(str(job.source), job.output, "failed", reason)))
            continue
        started.append(job)
        yield (index, job, info), gray, guide
        del gray  # not held while the next photo is read


def _check_header(pil_format: str, header: headers.Header) -> None:
    """Refuse, before decoding it, a photo that could not be written as `pil_format` whatever
    its orientation; the check on the decoded photo stays the final one."""
    writing.check_any_writable(header.shapes(), pil_format)


def _drain(
    failures: list[tuple[int, Outcome]], progress: ProgressSink, before: int | None = None
) -> Iterator[Outcome]:
    """The unreadable photos' outcomes (those before job `before`, or all), in order."""
    while failures and (before is None or failures[0][0] < before):
        progress.advance(1)
        yield failures.pop(0)[1]


def _finish(
    job: Job,
    gray: np.ndarray,
    ab: np.ndarray,
    info: images.ImageInfo,
    options: ApplyOptions,
    abandon: threading.Event,
) -> Outcome:
    """A photo's full-size colour from its gray and render-size a*b*, encoded and written; not
    started, or stopped with nothing left behind, once `abandon` is set."""
    failed = functools.partial(Outcome, str(job.source), job.output, "failed")
    if abandon.is_set():
        return failed("interrupted")
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        pil_format = writing.output_format(job.output, options.format)
        image = output_image(gray, ab, pil_format, options.quality)
        del gray, ab
        if abandon.is_set():  # interrupted while the colour was made: nothing is written
            return failed("interrupted")
        writing.write_image(
            job.output,
            image,
            pil_format,
            options.quality,
            info.exif,
            info.icc_converted,
            stop=abandon,
        )
    except OSError as exc:
        return failed(f"cannot write: {fsutil.os_reason(exc)}")
    except ColorizeError as exc:
        return failed(exc.reason)
    except MemoryError:
        return failed("not enough memory to finish")
    except Exception as exc:  # noqa: BLE001 - one photo's failure, never a traceback
        return failed(one_line(exc))
    return Outcome(str(job.source), job.output, "written")


def colorize_bytes(
    data: bytes,
    colorizer: Colorizer,
    format: str | None = None,
    quality: int = PHOTO_QUALITY,
    name: str = "-",
    max_pixels: int | None = MAX_PIXELS,
    guide: Guide | None = None,
) -> bytes:
    """One encoded photo in, the colorized photo encoded out (`colorize apply - -o -`).

    The output format is `format`, else the input's own when it can be written, else PNG; EXIF is
    carried over, and a photo that came with an ICC profile leaves tagged sRGB. Errors are
    ColorizeError named `name`, with exit code 2: the call's one input failed, nothing was done.
    """
    try:
        gray, info = images.read_gray_with_info(
            data,
            max_pixels,
            name=name,
            check_header=lambda header: _check_header(
                _stream_format(name, format, header.format), header
            ),
        )
        pil_format = _stream_format(name, format, info.format)
        writing.check_writable(gray.shape, pil_format)
        if guide is not None and guide.points:
            try:
                hints.check_inside(list(guide.points), *gray.shape)
            except hints.HintError as exc:
                raise ColorizeError(f"hints: {exc}", name) from None
        gray, ab = colorizer.chroma(gray, guide)
        image = output_image(gray, ab, pil_format, quality)
        return writing.encode_image(image, pil_format, quality, info.exif, info.icc_converted)
    except ImageError as exc:
        raise ColorizeError(exc.reason, exc.path or name) from exc
    except MemoryError:
        raise ColorizeError("not enough memory to colorize this photo", name) from None


def _stream_format(name: str, format: str | None, input_format: str) -> str:
    """The format a streamed photo is written in: `format`, else the input's own when it can be
    written, else PNG."""
    try:
        return writing.output_format(name, format or input_format)
    except ImageError:
        if format is not None:
            raise
        return writing.output_format(name, FALLBACK_FORMAT)
