"""Where each input's colour guidance comes from in `apply`: `--hints FILE` (one photo) or
`--hints DIR` (`DIR/<stem>.json` per photo; a photo without one gets none) and `--reference PHOTO`
(one palette for every input, videos included). docs/hints.md is the user's page.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from colorize_cli import fsutil
from colorize_cli.errors import ColorizeError, ImageError, UsageError
from colorize_cli.imaging import hints
from colorize_cli.imaging.hints import Guide, HintError


class Guides:
    """The hints and reference of one `apply` call; `for_photo` gives each photo its Guide."""

    def __init__(
        self,
        hints_path: str | os.PathLike[str] | None,
        reference_path: str | os.PathLike[str] | None,
        max_pixels: int | None,
    ) -> None:
        """UsageError (exit 2: nothing can be done as asked) for a reference that cannot be read
        or a --hints path that is neither a file nor a folder."""
        self.hints_path = None if hints_path is None else Path(hints_path)
        self.reference_ab: np.ndarray | None = None
        if reference_path is not None:
            from colorize_cli.imaging import images

            try:
                self.reference_ab = hints.reference_ab(
                    images.read_image(reference_path, max_pixels)
                )
            except ImageError as exc:
                raise UsageError(f"--reference: {exc.reason}", reference_path) from None
        if self.hints_path is not None and not (
            self.hints_path.is_dir() or self.hints_path.is_file()
        ):
            reason = "not found" if not self.hints_path.exists() else fsutil.NOT_REGULAR
            raise UsageError(f"--hints: {reason}", self.hints_path)

    @property
    def given(self) -> bool:
        return self.hints_path is not None or self.reference_ab is not None

    def check_inputs(self, photos: Sequence[Path]) -> None:
        """UsageError when one hints FILE would serve several photos (its points are one photo's
        pixels)."""
        if self.hints_path is not None and self.hints_path.is_file() and len(photos) > 1:
            raise UsageError(
                f"--hints FILE is for one photo, and {len(photos)} photos were given: give a "
                "folder of <stem>.json files, one per photo",
                self.hints_path,
            )

    def hints_file(self, source: Path) -> Path | None:
        """The hints file of one input, if it has one."""
        if self.hints_path is None:
            return None
        if self.hints_path.is_dir():
            candidate = self.hints_path / f"{source.stem}.json"
            return candidate if candidate.exists() else None
        return self.hints_path

    def for_photo(self, source: Path, shape: tuple[int, int]) -> Guide:
        """The Guide of a photo of `shape` (height, width); ColorizeError naming the hints file
        for a bad one (that photo fails, exit 1)."""
        points: tuple[hints.Point, ...] = ()
        path = self.hints_file(source)
        if path is not None:
            try:
                points = tuple(hints.read_hints(path))
                hints.check_inside(list(points), *shape)
            except HintError as exc:
                raise ColorizeError(f"hints file {path}: {exc}", source) from None
            except OSError as exc:
                raise ColorizeError(
                    f"hints file {path}: cannot read: {fsutil.os_reason(exc)}", source
                ) from None
        return Guide(points, self.reference_ab)

    def for_video(self, source: Path) -> Guide:
        """A video's Guide: the reference only; a hints file meant for it is an error."""
        path = self.hints_file(source)
        if path is not None:
            raise ColorizeError(
                f"hints file {path}: point hints are for photos; use --reference for a video",
                source,
            )
        return Guide(reference_ab=self.reference_ab)
