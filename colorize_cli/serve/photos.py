"""The page's work, without HTTP: the photos it holds by opaque id (uploads and the command
line's), reference palettes, previews at display resolution and downloads made by apply's own
`colorize_bytes`, so a download equals `colorize apply PHOTO --hints SAVED.json` bit for bit.
"""

from __future__ import annotations

import io
import json
import secrets
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from colorize_cli import fsutil
from colorize_cli.config import PHOTO_QUALITY, ServeOptions
from colorize_cli.constants import MAX_STREAM_BYTES
from colorize_cli.errors import ColorizeError, ImageError
from colorize_cli.imaging import hints, images, writing
from colorize_cli.imaging.chroma import output_image
from colorize_cli.imaging.hints import Guide
from colorize_cli.inference.applying import colorize_bytes
from colorize_cli.inference.colorizer import Colorizer
from colorize_cli.inference.planning import OUTPUT_SUFFIX, own_suffix

# Previews are JPEGs: a tenth of a PNG's encoding time, and the page shows them scaled anyway.
PREVIEW_QUALITY = 90
# Reference palettes held for the page (each a few hundred kB of a*b*); the oldest go first.
MAX_REFERENCES = 16
PALETTE_SWATCHES = 6


class NotFound(ColorizeError):
    """An id the server does not hold (never held, or dropped to bound the memory)."""


@dataclass
class _Loaded:
    """A decoded photo: its full-resolution gray (what apply colorizes) and the preview's."""

    gray: np.ndarray
    preview: np.ndarray
    data: bytes | None  # an upload's encoded bytes; None for a command-line photo (re-read)

    @property
    def nbytes(self) -> int:
        return self.gray.nbytes + self.preview.nbytes + len(self.data or b"")


@dataclass
class Entry:
    """One photo of the page: `name` is a file name only (shown, and used for the output's), never
    a path a client gave; `path` is set for photos named on the command line."""

    id: str
    name: str
    path: Path | None = None
    loaded: _Loaded | None = None
    error: str | None = None

    def describe(self) -> dict:
        out: dict = {"id": self.id, "name": self.name}
        if self.loaded is not None:
            height, width = self.loaded.gray.shape
            out |= {
                "width": width,
                "height": height,
                "preview_width": self.loaded.preview.shape[1],
                "preview_height": self.loaded.preview.shape[0],
                "default_size": hints.default_point_size(height, width),
            }
        if self.error is not None:
            out["error"] = self.error
        return out


class _LockedColorizer:
    """A Colorizer that runs one photo at a time: a backend holds one interpreter's buffers, and
    two tabs must never share them. `colorize_bytes` decodes, finishes the full-size colour and
    encodes outside the lock."""

    def __init__(self, colorizer: Colorizer, lock: threading.Lock) -> None:
        self.colorizer, self.lock = colorizer, lock

    def chroma(
        self, image: np.ndarray, guide: Guide | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            return self.colorizer.chroma(image, guide)


class Studio:
    """Everything the page does, for the routes of app.py; safe to call from many threads."""

    def __init__(self, options: ServeOptions, colorizer: Colorizer | None = None) -> None:
        self.options = options
        self.colorizer = colorizer or Colorizer(
            options.model_path, options.render_size, 1, options.backend
        )
        self._run_lock = threading.Lock()
        self._locked = _LockedColorizer(self.colorizer, self._run_lock)
        self._lock = threading.Lock()  # the tables below
        self._entries: dict[str, Entry] = {}  # in the order they came
        self._recent: OrderedDict[str, None] = OrderedDict()  # least recently used first
        self._references: OrderedDict[str, tuple[np.ndarray, list[str]]] = OrderedDict()

    def health(self) -> dict:
        return {
            "status": "ok",
            "model": str(self.colorizer.model_path),
            "backend": self.colorizer.backend.name,
            "render_size": self.colorizer.render_size,
            "takes_hints": self.colorizer.takes_hints,
            "max_upload_bytes": self.options.max_upload_bytes,
            "max_pixels": self.options.max_pixels,
        }

    # Photos.
    def add_paths(self, paths: Sequence[Path]) -> list[Entry]:
        """Photos named on the command line: listed now, read when the page first opens them."""
        with self._lock:
            added = [Entry(_new_id(), Path(path).name, Path(path)) for path in paths]
            self._entries.update((entry.id, entry) for entry in added)
            self._recent.update((entry.id, None) for entry in added)
        return added

    def add_upload(self, name: str, data: bytes) -> Entry:
        """An uploaded photo, read now by apply's safe reader (ImageError for a bad one)."""
        entry = Entry(_new_id(), name)
        entry.loaded = self._decode(data, name, keep=True)
        with self._lock:
            self._entries[entry.id] = entry
            self._recent[entry.id] = None
            self._evict(keep=entry.id)
        return entry

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def photo(self, photo_id: str) -> Entry:
        """The entry `photo_id`, decoded (NotFound, or ImageError for an unreadable file)."""
        with self._lock:
            entry = self._entries.get(photo_id)
            if entry is None:
                raise NotFound(
                    f"no photo {photo_id!r} here (dropped to bound memory?): add it again"
                )
            self._recent.move_to_end(photo_id)
            if entry.loaded is not None:
                return entry
        if entry.path is None:
            raise NotFound(f"photo {entry.name} is no longer held: add it again")
        try:
            loaded = self._decode(self._read(entry), entry.name, keep=False)
        except ImageError as exc:
            entry.error = exc.reason
            raise
        with self._lock:
            entry.loaded, entry.error = loaded, None
            self._evict(keep=entry.id)
        return entry

    def gray_preview(self, photo_id: str) -> bytes:
        loaded = self._loaded(photo_id)
        gray = np.repeat(loaded.preview[..., None], 3, 2)
        return writing.encode_image(gray, "jpg", PREVIEW_QUALITY)

    def preview(self, photo_id: str, hints_text: str | bytes) -> bytes:
        """The colorized photo at display resolution, as a JPEG: the download's very colour (the
        network sees the full-resolution gray), recombined with the preview's gray."""
        loaded = self._loaded(photo_id)
        guide = self.guide(hints_text)
        _, ab = self._locked.chroma(loaded.gray, guide)
        image = output_image(loaded.preview, ab, "JPEG", PREVIEW_QUALITY)
        return writing.encode_image(image, "jpg", PREVIEW_QUALITY)

    def download(
        self, photo_id: str, hints_text: str | bytes, format: str | None = None
    ) -> tuple[str, bytes]:
        """(file name, encoded photo) at full resolution, by `colorize_bytes` under apply's rules:
        the output format and name are the ones `colorize apply PHOTO [--format F]` writes."""
        entry = self.photo(photo_id)
        guide = self.guide(hints_text)
        data = entry.loaded.data if entry.loaded and entry.loaded.data else self._read(entry)
        format = format or _own_format(entry.name)
        encoded = colorize_bytes(
            data,
            self._locked,  # type: ignore[arg-type]
            format,
            PHOTO_QUALITY,
            entry.name,
            self.options.max_pixels,
            guide,
        )
        return f"{Path(entry.name).stem}{OUTPUT_SUFFIX}.{format}", encoded

    def zip(self, items: Sequence[tuple[str, str | bytes]], format: str | None = None) -> bytes:
        """Every (photo id, hints text) downloaded into one zip (stored: photos are compressed)."""
        buffer = io.BytesIO()
        names: set[str] = set()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for photo_id, hints_text in items:
                name, data = self.download(photo_id, hints_text, format)
                stem, dot, suffix = name.rpartition(".")
                unique, k = name, 1
                while unique in names:
                    k += 1
                    unique = f"{stem}-{k}{dot}{suffix}"
                names.add(unique)
                archive.writestr(unique, data)
        return buffer.getvalue()

    def colorize_upload(
        self,
        name: str,
        data: bytes,
        hints_text: str | bytes | None = None,
        reference: bytes | None = None,
        format: str | None = None,
    ) -> bytes:
        """`POST /api/colorize`: one photo in, colorized at full resolution out (apply's rules)."""
        points = tuple(hints.parse_hints(hints_text)) if hints_text else ()
        reference_ab = None if reference is None else self._reference_ab(reference)
        guide = Guide(points, reference_ab) if points or reference_ab is not None else None
        return colorize_bytes(
            data,
            self._locked,  # type: ignore[arg-type]
            format,
            PHOTO_QUALITY,
            name,
            self.options.max_pixels,
            guide,
        )

    # References and hints.
    def add_reference(self, name: str, data: bytes) -> tuple[str, list[str]]:
        """A reference photo's id and its palette's main colours as #rrggbb."""
        ab = self._reference_ab(data, name)
        swatches = hints.palette_colors(hints.palette(ab), PALETTE_SWATCHES)
        colors = ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in swatches]
        reference_id = _new_id()
        with self._lock:
            self._references[reference_id] = (ab, colors)
            while len(self._references) > MAX_REFERENCES:
                self._references.popitem(last=False)
        return reference_id, colors

    def guide(self, hints_text: str | bytes) -> Guide | None:
        """A page request's Guide: a hints document (`{"points": [...]}`, as `apply --hints`
        reads) that may also name a held reference (`"reference": ID`). HintError if bad."""
        points = tuple(hints.parse_hints(hints_text))
        reference_id = json.loads(hints_text).get("reference")
        reference_ab = None
        if reference_id is not None:
            with self._lock:
                held = self._references.get(str(reference_id))
            if held is None:
                raise NotFound(f"no reference {reference_id!r} here: add it again")
            reference_ab = held[0]
        return Guide(points, reference_ab) if points or reference_ab is not None else None

    # Inside.
    def _reference_ab(self, data: bytes, name: str = "reference") -> np.ndarray:
        try:
            return hints.reference_ab(images.read_image_bytes(data, name, self.options.max_pixels))
        except ImageError as exc:
            raise ImageError(f"reference: {exc.reason}", name) from exc

    def _loaded(self, photo_id: str) -> _Loaded:
        loaded = self.photo(photo_id).loaded
        if loaded is None:  # dropped by another request between the two steps
            raise NotFound(f"photo {photo_id!r} was dropped to bound memory: add it again")
        return loaded

    def _read(self, entry: Entry) -> bytes:
        try:
            return fsutil.read_regular_file(entry.path, MAX_STREAM_BYTES)  # type: ignore[arg-type]
        except OSError as exc:
            raise ImageError(f"cannot read: {fsutil.os_reason(exc)}", entry.name) from None

    def _decode(self, data: bytes, name: str, keep: bool) -> _Loaded:
        """`data` read as `colorize_bytes` reads it, to the same gray; `keep` holds the bytes."""
        gray, _ = images.read_gray_with_info(data, self.options.max_pixels, name=name)
        height, width = gray.shape
        scale = min(1.0, self.options.preview_side / max(height, width))
        preview = gray
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            preview = np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BILINEAR))
        return _Loaded(gray, preview, data if keep else None)

    def _evict(self, keep: str) -> None:
        """Drop the least recently used photos past the memory budget (`_lock` held): an upload
        goes, a command-line photo is only unloaded (it is read again when opened)."""
        total = sum(e.loaded.nbytes for e in self._entries.values() if e.loaded is not None)
        for entry in [self._entries[photo_id] for photo_id in self._recent]:
            if total <= self.options.memory_bytes:
                return
            if entry.id == keep or entry.loaded is None:
                continue
            total -= entry.loaded.nbytes
            entry.loaded = None
            if entry.path is None:
                del self._entries[entry.id], self._recent[entry.id]


def _new_id() -> str:
    return secrets.token_hex(8)


def _own_format(name: str) -> str:
    """The format `colorize apply NAME` writes: its own extension's if writable, else PNG."""
    return own_suffix(name).lstrip(".")
