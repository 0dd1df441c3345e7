"""Synthetic shots made from still photos, with their colour truth, and tiny video files made from
them with PyAV: what tests/test_video.py, tests/test_temporal.py and bench/video.py score.

Shots: a slow pan across one photo, a slow zoom into another, a static shot with film grain, and
a fast object (a patch of the photo, turned over) crossing the still photo; a clip joins shots
with hard cuts. The gray versions are the inputs; the colour frames the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from colorize_cli.imaging import color


def _fit(photo: np.ndarray, width: int, height: int, margin: float) -> Image.Image:
    """The photo resized so a (width, height) window has `margin` of room to move in."""
    image = Image.fromarray(photo)
    scale = max(width * (1 + margin) / image.width, height * (1 + margin) / image.height)
    size = (
        max(width + 1, round(image.width * scale)),
        max(height + 1, round(image.height * scale)),
    )
    return image.resize(size, Image.Resampling.LANCZOS)


def pan(photo: np.ndarray, width: int, height: int, frames: int) -> list[np.ndarray]:
    """A window moving left to right across the photo, about 1% of the width per frame."""
    image = _fit(photo, width, height, margin=0.01 * frames)
    room = image.width - width
    top = (image.height - height) // 2
    return [
        np.asarray(image.crop((x, top, x + width, top + height)))
        for x in np.linspace(0, room, frames).round().astype(int)
    ]


def zoom(photo: np.ndarray, width: int, height: int, frames: int) -> list[np.ndarray]:
    """A window shrinking towards the photo's centre (up to 1.3x), each frame resized to size."""
    image = _fit(photo, width, height, margin=0.0)
    out = []
    for factor in np.linspace(1.0, 1.3, frames):
        w, h = image.width / factor, image.height / factor
        left, top = (image.width - w) / 2, (image.height - h) / 2
        box = (left, top, left + w, top + h)
        out.append(np.asarray(image.resize((width, height), Image.Resampling.BILINEAR, box=box)))
    return out


def grain(
    photo: np.ndarray, width: int, height: int, frames: int, sigma: float = 6.0, seed: int = 0
) -> list[np.ndarray]:
    """A still shot with film grain: the same frame plus fresh gray noise each time."""
    still = np.asarray(_fit(photo, width, height, 0.0).resize((width, height))).astype(np.float32)
    rng = np.random.default_rng(seed)
    return [
        np.clip(still + rng.normal(0, sigma, (height, width, 1)), 0, 255).round().astype(np.uint8)
        for _ in range(frames)
    ]


def crossing(photo: np.ndarray, width: int, height: int, frames: int) -> list[np.ndarray]:
    """A still background and an object, 0.4 x the height square, crossing it left to right."""
    still = np.asarray(_fit(photo, width, height, 0.0).resize((width, height)))
    side = max(2, round(0.4 * height))
    top = (still.shape[0] - side) // 2
    patch = still[top : top + side, (width - side) // 2 :][:, :side][::-1, ::-1]
    out = []
    for x in np.linspace(0, width - side, frames).round().astype(int):
        frame = still.copy()
        frame[top : top + side, x : x + side] = patch
        out.append(frame)
    return out


def clip(
    photos: Sequence[np.ndarray], width: int, height: int, frames_per_shot: int
) -> tuple[list[np.ndarray], list[bool]]:
    """Shots pan, zoom, grain, crossing (cycling) of one photo each, joined by cuts: (frames, cut
    flags)."""
    makers = (pan, zoom, grain, crossing)
    frames: list[np.ndarray] = []
    cuts: list[bool] = []
    for i, photo in enumerate(photos):
        shot = makers[i % len(makers)](photo, width, height, frames_per_shot)
        frames += shot
        cuts += [True] + [False] * (len(shot) - 1)
    return frames, cuts


def write_video(
    path: Path,
    frames: Sequence[np.ndarray],
    rate: int = 24,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    container_format: str | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    audio: bool = False,
    rotation: int = 0,
    options: dict[str, str] | None = None,
) -> None:
    """Encode uint8 RGB or gray `frames` (gray written as gray RGB); optional tone and rotation."""
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate, options=options or {"crf": "12"})
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = pix_fmt
        if time_base is not None:
            stream.time_base = stream.codec_context.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = out.add_stream("aac", rate=16000)
            sound.layout = "mono"
        for i, rgb in enumerate(frames):
            if rgb.ndim == 2:
                rgb = np.repeat(rgb[..., None], 3, axis=2)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i if pts is None else pts[i]
            if time_base is not None:
                frame.time_base = time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if sound is not None:
            seconds = len(frames) / rate
            t = np.arange(int(seconds * 16000)) / 16000
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, len(tone), 1024):
                chunk = tone[start : start + 1024][None]
                piece = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                piece.sample_rate, piece.pts = 16000, start
                out.mux(sound.encode(piece))
            out.mux(sound.encode(None))


def read_frames(path: Path, format: str = "rgb24") -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format=format) for f in container.decode(container.streams.video[0])]


def gray_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [color.grayscale(frame) for frame in frames]
