"""Video in, colorized video out, as a stream: frames are decoded, colorized in batches
(`Colorizer.chroma_many`), stabilised over time (`temporal.Stabilizer`), given chroma planes at
the encoder's own resolution and encoded as they go (on a second thread, beside the next batch),
while audio and subtitle packets are copied untouched.

An untrusted-input boundary, like `imaging/images.py`: a file that is not a video, or is damaged,
raises ImageError naming it, and PyAV (ffmpeg's demuxers and decoders) never runs code from it.
The output is H.264 at `crf` with the input's own luma plane, timestamps, colour tags and rotation,
in the input's container where H.264 fits (else Matroska), written to a temporary name and renamed.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from colorize_cli import fsutil
from colorize_cli.config import VIDEO_CRF, VIDEO_NETWORK_EVERY, VIDEO_PRESET
from colorize_cli.errors import ImageError
from colorize_cli.imaging.hints import Guide
from colorize_cli.inference import temporal, video_frames
from colorize_cli.inference.colorizer import Colorizer
from colorize_cli.inference.temporal import Stabilizer
from colorize_cli.progress import NullProgress, ProgressSink

VIDEO_CODEC = "libx264"
# Output containers by suffix: the input's own where it holds H.264 and whatever it already held,
# else Matroska (a WebM's VP9/Opus and most other streams fit there).
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
FALLBACK_SUFFIX = ".mkv"
COPIED_STREAMS = ("audio", "subtitle")
# ffmpeg may only read the one local file with one of these demuxers: a playlist (HLS, concat)
# would open other files or URLs and copy what they hold into the output.
_OPEN_OPTIONS = {
    "format_whitelist": "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,flv,asf,ogg",
    "protocol_whitelist": "file",
}


T = TypeVar("T")


@dataclass(frozen=True)
class VideoReport:
    """What `colorize_video` did: frames written, cuts found, streams copied and left out."""

    frames: int
    cuts: int
    copied: int
    left_out: tuple[str, ...]


def output_suffix(path: str | Path) -> str:
    """The extension of a video's output: its own where that container holds H.264, else .mkv."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in CONTAINERS else FALLBACK_SUFFIX


def colorize_video(
    source: str | Path,
    output: str | Path,
    colorizer: Colorizer,
    crf: int = VIDEO_CRF,
    stabilize: bool = True,
    progress: ProgressSink | None = None,
    guide: Guide | None = None,
    network_every: int = VIDEO_NETWORK_EVERY,
    preset: str = VIDEO_PRESET,
) -> VideoReport:
    """Colorize video `source` into `output` (atomically); ImageError names `source` on failure.
    `guide` (its reference palette) applies to every frame. The network runs on every
    `network_every`-th frame of a shot and on the first after each cut; a frame between keeps the
    colour of the one before it, which the stabiliser then fits to its own gray. x264 encodes at
    `crf` with `preset` (constants.VIDEO_PRESETS).

    Frames, timestamps, resolution and rotation are the input's; so is each frame's luma (up to
    H.264's error at `crf`). Memory is bounded by the colorizer's batch of network frames, each
    with the up to `network_every` - 1 frames that keep its colour (all of them within the
    batch's pixel budget, or one network frame and its followers alone), whatever the length.
    """
    import av

    progress = progress or NullProgress()
    try:
        container = av.open(str(source), metadata_errors="ignore", container_options=_OPEN_OPTIONS)
    except av.error.ArgumentError:  # a demuxer or protocol outside the lists
        raise ImageError("not a readable video (not a supported container)", source) from None
    except av.error.FFmpegError as exc:
        raise ImageError(f"not a readable video ({_reason(exc)})", source) from None
    with container:
        video = _video_stream(container, source)
        output = Path(output)
        try:
            with (
                fsutil.atomic_path(output) as temporary,
                av.open(str(temporary), "w", format=CONTAINERS[output_suffix(output)]) as out,
            ):
                stabilizer = Stabilizer() if stabilize else None
                transcode = _Transcode(container, video, out, source)
                frames, copied, left_out = transcode.run(
                    colorizer, crf, stabilizer, progress, guide, network_every, preset
                )
        except av.error.FFmpegError as exc:
            raise ImageError(f"cannot write the video ({_reason(exc)})", source) from None
        except OSError as exc:
            raise ImageError(f"cannot write: {fsutil.os_reason(exc)}", source) from None
    cuts = stabilizer.cuts if stabilizer is not None else 0
    return VideoReport(frames, cuts, copied, left_out)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _reason(exc: Any) -> str:
    return str(getattr(exc, "strerror", None) or exc).rstrip(".")


def _video_stream(container: Any, source: str | Path) -> Any:
    """The video stream to colorize: the first that is not a cover picture."""
    import av

    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    kinds = sorted({stream.type for stream in container.streams})
    found = f" ({', '.join(kinds)} only)" if kinds else ""
    raise ImageError(f"no video stream{found}", source)


class _Transcode:
    """One input container to one output container: demux, decode, colorize, encode, mux."""

    def __init__(self, container: Any, video: Any, out: Any, source: str | Path) -> None:
        self.container, self.video, self.out, self.source = container, video, out, source
        self.copies: dict[int, Any] = {}
        self.held: list[Any] = []  # packets read before the output's streams exist
        self.muxing = threading.Lock()  # copied packets and encoded frames come from two threads
        self.started = False
        self.decoded = 0

    def run(
        self,
        colorizer: Colorizer,
        crf: int,
        stabilizer: Stabilizer | None,
        progress: ProgressSink,
        guide: Guide | None,
        network_every: int,
        preset: str,
    ) -> tuple[int, int, tuple[str, ...]]:
        self.video.thread_type = "AUTO"
        frames = self._frames()
        first = next(frames, None)
        if first is None:
            raise ImageError("no video frames", self.source)
        layout = video_frames.layout_of(first)
        encoder = self._add_encoder(first, layout, crf, preset)
        left_out = self._add_copies()
        self.started = True
        for packet in self.held:
            self._mux_copy(packet)
        self.held.clear()

        total = self.video.frames or _estimated_frames(self.container, self.video)
        progress.start(f"colorizing {Path(self.source).name}", total=total, unit="frames")
        step = _frame_step(self.video)
        last_pts: int | None = None
        written = 0
        turns = layout.quarter_turns
        grays = _Prefetch(
            ((frame.pts, planes), np.rot90(planes.gray, turns), guide)
            for frame in chain([first], frames)
            for planes in [video_frames.planes(frame, layout)]
        )

        def encode(pts: int, planes: video_frames.Planes, grid: np.ndarray, ab: np.ndarray) -> None:
            encoder_frame = video_frames.output_frame(planes, grid, ab, layout)
            encoder_frame.pts, encoder_frame.time_base = pts, self.video.time_base
            self._mux(encoder.encode(encoder_frame))

        pending: deque[Future[None]] = deque()
        with grays, ThreadPoolExecutor(1) as encoding:  # one thread: frames encoded in order
            try:
                groups = temporal.network_groups(grays, network_every)
                batches = colorizer.chroma_many(groups, held=_follower_pixels)
                for (lead, followers), _, predicted in batches:
                    stored = video_frames.stored(predicted, layout)
                    # The network's frame, then the frames that keep its colour, in order.
                    for pts, planes in [lead, *followers]:
                        # The network's grid, as stored: the stabiliser's gray and the chroma's L*.
                        grid = video_frames.render_grid(planes.level, stored.shape[:2])
                        ab = stored
                        if stabilizer is not None:  # it works upright, as the network does
                            upright = stabilizer(np.rot90(grid, turns), predicted)
                            ab = video_frames.stored(upright, layout)
                        if pts is None or (last_pts is not None and pts <= last_pts):
                            pts = 0 if last_pts is None else last_pts + step
                        last_pts = pts
                        pending.append(encoding.submit(encode, pts, planes, grid, ab))
                        # At most a batch waits: the encoding thread works while the network runs.
                        while len(pending) > colorizer.batch_size or (
                            pending and pending[0].done()
                        ):
                            pending.popleft().result()  # re-raises the encoding's exception here
                            written += 1
                            progress.advance(1)
                while pending:
                    pending.popleft().result()
                    written += 1
                    progress.advance(1)
            finally:
                for future in pending:
                    future.cancel()
        self._mux(encoder.encode(None))
        self._check_complete(written, last_pts, step)
        summary = [f"{Path(self.source).name}: {_count(written, 'frame')}"]
        if stabilizer is not None:
            summary.append(_count(stabilizer.cuts, "cut"))
        if self.copies:
            summary.append(f"{_count(len(self.copies), 'stream')} copied")
        progress.finish(", ".join(summary))
        return written, len(self.copies), left_out

    def _check_complete(self, written: int, last_pts: int | None, step: int) -> None:
        """ImageError if fewer frames came out than the file lists: a truncated file decodes
        without an error up to where it was cut."""
        listed = self.video.frames
        if listed and written < listed:
            raise ImageError(
                f"truncated or damaged: decoded {written} of the {listed} frames the file lists",
                self.source,
            )
        seconds = _listed_seconds(self.video)
        if seconds is None or last_pts is None or not self.video.time_base:
            return
        start = self.video.start_time or 0
        ended = float((last_pts + step - start) * self.video.time_base)
        if ended < seconds - 2 * float(step * self.video.time_base) - 0.05:
            raise ImageError(
                f"truncated or damaged: the video stops at {ended:.2f} s of the {seconds:.2f} s "
                "the file lists",
                self.source,
            )

    def _frames(self) -> Iterator[Any]:
        """Decoded video frames; other packets are muxed (or held) on the way."""
        import av

        wanted = [s for s in self.container.streams if s.type in COPIED_STREAMS or s is self.video]
        try:
            for packet in self.container.demux(wanted):
                if packet.stream.index == self.video.index:
                    for frame in packet.decode():
                        self.decoded += 1
                        yield frame
                elif packet.size:  # not the empty packet that ends a stream
                    if self.started:
                        self._mux_copy(packet)
                    else:
                        self.held.append(packet)
        except av.error.FFmpegError as exc:
            at = f" after frame {self.decoded}" if self.decoded else ""
            raise ImageError(f"damaged video{at} ({_reason(exc)})", self.source) from None

    def _mux_copy(self, packet: Any) -> None:
        target = self.copies.get(packet.stream.index)
        if target is not None:
            packet.stream = target
            self._mux(packet)

    def _mux(self, packets: Any) -> None:
        with self.muxing:
            self.out.mux(packets)

    def _add_encoder(self, first: Any, layout: video_frames.Layout, crf: int, preset: str) -> Any:
        rate = self.video.average_rate or self.video.guessed_rate or 25
        options = {"crf": str(crf), "preset": preset}
        stream = self.out.add_stream(VIDEO_CODEC, rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = layout.width, layout.height, layout.pix_fmt
        stream.time_base = self.video.time_base
        context = stream.codec_context
        context.time_base = self.video.time_base
        context.color_range = (
            video_frames.JPEG_RANGE if layout.full_range else video_frames.MPEG_RANGE
        )
        context.colorspace = layout.colorspace
        if first.color_primaries not in (0, 2):  # reserved, unspecified
            context.color_primaries = first.color_primaries
        if first.color_trc not in (0, 2):
            context.color_trc = first.color_trc
        aspect = self.video.codec_context.sample_aspect_ratio
        if aspect:
            context.sample_aspect_ratio = aspect
        if first.rotation:
            stream.set_display_rotation(first.rotation)
        if self.video.language:
            stream.metadata["language"] = self.video.language
        return stream

    def _add_copies(self) -> tuple[str, ...]:
        """An output stream for each audio and subtitle stream the output container can hold;
        the others are left out, each described (and why, when the container is the reason)."""
        left_out = []
        for stream in self.container.streams:
            if stream is self.video:
                continue
            name = stream.codec_context.name if stream.codec_context else "unknown"
            described = f"{stream.type} stream {stream.index} ({name})"
            if stream.type not in COPIED_STREAMS:
                left_out.append(described)
                continue
            try:
                target = self.out.add_stream_from_template(stream)
            except ValueError:  # "'avi' format does not support 'opus' codec": a WebM named .avi
                left_out.append(f"{described}, which {self.out.format.name} cannot hold")
                continue
            if stream.language:
                target.metadata["language"] = stream.language
            self.copies[stream.index] = target
        return tuple(left_out)


class _Prefetch(Iterator[T]):
    """Items of an iterable made ahead on a thread of their own (decoding beside the network and
    the colour), at most a batch or so ahead; its exception is raised where the item was due.
    Close it (a `with` block) before what it reads is closed."""

    _DEPTH = 8
    _END = object()

    def __init__(self, items: Iterable[T]) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(self._DEPTH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(items,), daemon=True)
        self._thread.start()

    def _produce(self, items: Iterable[T]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)
            return
        self._put(self._END)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self) -> T:
        item = self._queue.get()
        if item is self._END:
            self._queue.put(item)  # later calls end too
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def __enter__(self) -> _Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _follower_pixels(group: tuple[Any, list[tuple[Any, video_frames.Planes]]]) -> int:
    """What a network frame's followers hold while they wait for its colour, in the batch
    budget's unit (a photo's gray: a byte a pixel): their planes' bytes."""
    return sum(planes.nbytes for _, planes in group[1])


def _frame_step(video: Any) -> int:
    """One frame's duration in the stream's time base (for frames that come without a pts)."""
    rate = video.average_rate or video.guessed_rate
    if not rate or not video.time_base:
        return 1
    return max(1, round(1 / (rate * video.time_base)))


def _listed_seconds(video: Any) -> float | None:
    """The video stream's own duration, from the container (Matroska keeps it as a tag)."""
    if video.duration and video.time_base:
        return float(video.duration * video.time_base)
    tag = video.metadata.get("DURATION", "")
    try:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def _estimated_frames(container: Any, video: Any) -> int | None:
    rate = video.average_rate or video.guessed_rate
    if video.duration and video.time_base and rate:
        return round(video.duration * video.time_base * rate)
    if container.duration and rate:
        return round(container.duration / 1_000_000 * rate)
    return None
