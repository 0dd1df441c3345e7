"""Measure video colorization: flicker and CIEDE2000 with and without stabilisation, and the
speed and peak memory of `colorize apply clip.mp4` at 480p and 1080p.

    .venv/bin/python bench/video.py                       # both parts, bundled model
    .venv/bin/python bench/video.py quality --clips 4     # flicker / CIEDE2000 only
    .venv/bin/python bench/video.py every --clips 3       # the network on every N-th frame
    .venv/bin/python bench/video.py luma                  # output luma vs input luma
    .venv/bin/python bench/video.py speed --sizes 480p    # fps and peak RSS only
    .venv/bin/python bench/video.py speed --before 04996df  # the code at a git revision too
    .venv/bin/python bench/video.py agreement 04996df     # colour: new against old code
    .venv/bin/python bench/video.py profile --lengths 30  # cProfile of one 1080p run
    .venv/bin/python bench/video.py steps --lengths 40    # each step of a 1080p frame in turn
    .venv/bin/python bench/video.py presets --clips 2     # x264 presets: size and fidelity

quality: clips made from the dev validation photos (the 5% split by content hash, as `prepare`
chooses it; never trained on) by tests/clips.py: each clip is a slow pan, a slow zoom, a still
shot with film grain and a fast object crossing a still, of one photo each, joined by cuts, at
640x480 and `--frames` frames a shot.
The gray frames go through `Colorizer.chroma_many`, then each stabiliser setting, then
`recombine`, in memory (no encoder error). Flicker is the mean |delta a*b*| between consecutive
frames of a shot, at full resolution, against the truth's own; CIEDE2000 is per frame against the
colour truth, averaged; "error change" is the flicker of (output - truth): how much the output's
colour moves in ways the truth's does not. Cuts are the stabiliser's own detections; the true
ones are reported.

every: the same clips with the network on every N-th frame of a shot only (`--network-every`,
default 1 2 3 4; `temporal.network_groups` picks the frames, as `colorize_video` does), the default
stabiliser carrying the colour to the frames between: the share of frames through the network,
flicker, error change and CIEDE2000 per shot kind.

luma: one such clip with a 16 kHz tone through `video.colorize_video` at --crf 0, 18 and 28:
the output's decoded Y planes against the input's, and whether the audio packets are identical.

speed: a pan across a dev photo at 854x480 or 1920x1080 with a 16 kHz tone, written as H.264,
then `video.colorize_video` in a fresh process (peak RSS from /proc, Linux only): frames per
second end to end (decode, network, colour, encode, mux) and peak RSS, for two clip lengths, so
a bounded memory shows as the same peak. Beside it, in the same sitting and its own fresh process,
the bare transcode of the same clip (PyAV decode -> libx264 crf 18 encode, nothing else): the
ceiling, and colorize's time over it. Then the same bare transcode of colorize's own output (the
colour clip): what x264 alone costs for colour frames, which it encodes more slowly than gray ones
(chroma planes with content). --before REV runs colorize_cli as it was at git REV too (unpacked
by `git archive`), clip by clip, so old and new see the same load.

presets: the quality clips through `colorize_video` at --crf 0 (lossless: the reference), then at
--crf 18 with each x264 preset (`--video-preset`, default veryfast faster medium slow): the
file's bitrate, and the PSNR of the decoded Y and of the U, V planes against the reference's, over
all frames and over the grain shots alone (film grain: the shot most like old film).

steps: the speed part's pan (the last of --sizes, the first of --lengths frames) through the
steps of `colorize_video` one at a time, each over every frame before the next starts, nothing
overlapped: decode, the planes (luma, gray, chroma level), the glance that finds cuts, the
network (every `VIDEO_NETWORK_EVERY`-th frame, in batches), the render-size grid, the stabiliser,
the chroma planes and x264 (the
default preset, crf 18, muxed). Milliseconds a frame each, their sum, and the whole
`colorize_video` on the same clip in the same process, whose time is less than the sum by what
its threads overlap.

agreement REV: the quality clips (3 by default) through `colorize_video` at --crf 0 (lossless, so
only the colour path differs; this tree's network on every frame, as older code ran it) by the
code at REV and by this tree; the mean CIEDE2000 between the
two outputs' decoded frames, and the largest frame mean. Prints Markdown tables for docs/video.md.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
# A child process times the colorize_cli named here when it is set (--before, agreement).
sys.path.insert(0, os.environ.get("COLORIZE_TREE", str(ROOT)))

from apply import child_env, rss_mb, tree_at  # noqa: E402

from colorize_cli.inference import temporal  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "dev"
MODEL = ROOT / "colorize_cli" / "weights" / "default.tflite"  # old and new code run the same one
SIZES = {"480p": (854, 480), "1080p": (1920, 1080)}
SHOTS = ("pan", "zoom", "grain", "crossing")


class FlowStabilizer(temporal.Stabilizer):
    """The issue's other candidate: the previous frame's colour warped onto this frame along DIS
    optical flow (OpenCV, `pip install opencv-python-headless`; not a colorize dependency)."""

    def previous(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import cv2

        ab, before = super().previous(gray)
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        flow = dis.calc(np.ascontiguousarray(gray), np.ascontiguousarray(before), None)
        rows, cols = np.indices(gray.shape, dtype=np.float32)
        map_x, map_y = cols + flow[..., 0], rows + flow[..., 1]

        def warp(x: np.ndarray) -> np.ndarray:
            return cv2.remap(x, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

        return warp(np.ascontiguousarray(ab)), warp(before.astype(np.float32))


SETTINGS = {  # name -> a new stabiliser (None: not stabilised)
    "none": None,
    "moving average 0.5": lambda: temporal.Stabilizer(0.5, motion_levels=float("inf")),
    "moving average 0.25": lambda: temporal.Stabilizer(0.25, motion_levels=float("inf")),
    "motion-aware 0.25 (default)": temporal.Stabilizer,
    "flow 0.25": FlowStabilizer,
}
if importlib.util.find_spec("cv2") is None:
    print("no OpenCV: the flow row is left out", file=sys.stderr)
    del SETTINGS["flow 0.25"]


def validation_photos(count: int) -> list[Path]:
    from colorize_cli.data.prepare import split_of

    photos = []
    for path in sorted(DEV.glob("*.jpg")):
        if split_of(hashlib.sha256(path.read_bytes()).hexdigest(), 0.05) == "val":
            photos.append(path)
    return photos[:count]


def shot_scores(
    labs: list[np.ndarray], truth_lab: list[np.ndarray], shot: list[str], cuts: list[bool]
) -> dict[str, tuple[float, float, float, float]]:
    """Per shot kind: the output's flicker, the truth's own, the error change and the mean
    CIEDE2000 against the truth (frames as CIELab)."""
    from colorize_cli.imaging import metrics

    scores = {}
    for kind in SHOTS:
        index = [i for i in range(len(labs)) if shot[i] == kind]
        out_ab = [labs[i][..., 1:] for i in index]
        true_ab = [truth_lab[i][..., 1:] for i in index]
        flags = [cuts[i] for i in index]
        errors = [o - t for o, t in zip(out_ab, true_ab, strict=True)]
        scores[kind] = (
            temporal.flicker(out_ab, flags),
            temporal.flicker(true_ab, flags),
            temporal.flicker(errors, flags),
            float(np.mean([metrics.mean_ciede2000(labs[i], truth_lab[i]) for i in index])),
        )
    return scores


def quality(clips_count: int, frames: int, render_size: int) -> list[dict]:
    import clips

    from colorize_cli.imaging import color
    from colorize_cli.imaging.chroma import recombine
    from colorize_cli.inference.colorizer import Colorizer

    colorizer = Colorizer(None, render_size=render_size)
    count = len(SHOTS)
    photos = [
        np.asarray(Image.open(p).convert("RGB")) for p in validation_photos(count * clips_count)
    ]
    totals: dict[tuple[str, str], list[float]] = {}
    true_cuts = found_cuts = 0
    for c in range(clips_count):
        truth, cuts = clips.clip(photos[count * c : count * (c + 1)], 640, 480, frames)
        grays = clips.gray_frames(truth)
        truth_lab = [color.srgb_to_lab(frame) for frame in truth]
        shot = [SHOTS[i // frames] for i in range(len(truth))]
        predicted = list(colorizer.chroma_many(enumerate(grays)))
        small = [
            np.asarray(Image.fromarray(g).resize(ab.shape[1::-1], Image.Resampling.BOX))
            for (_, g, ab) in predicted
        ]
        true_cuts += sum(cuts) - 1
        found_cuts += sum(temporal.find_cuts(small)) - 1
        for name, make in SETTINGS.items():
            abs_ = [ab for _, _, ab in predicted]
            if make is not None:
                stabilizer = make()
                abs_ = [stabilizer(g, ab) for g, ab in zip(small, abs_, strict=True)]
            labs = [color.srgb_to_lab(recombine(g, ab)) for g, ab in zip(grays, abs_, strict=True)]
            for kind, scores in shot_scores(labs, truth_lab, shot, cuts).items():
                row = totals.setdefault((name, kind), [0.0, 0.0, 0.0, 0.0, 0])
                for k, value in enumerate(scores):
                    row[k] += value
                row[4] += 1
    rows = []
    for (name, kind), (flick, own, error, de, n) in totals.items():
        rows.append(
            {
                "setting": name,
                "shot": kind,
                "flicker": flick / n,
                "truth": own / n,
                "error_change": error / n,
                "de": de / n,
            }
        )
    print(f"cuts: {found_cuts} found, {true_cuts} true", file=sys.stderr)
    return rows


def every(clips_count: int, frames: int, render_size: int, values: list[int]) -> list[dict]:
    """Flicker and CIEDE2000 (as `quality`) when the network runs on every N-th frame of a shot
    (`temporal.network_groups` chooses the frames, as `colorize_video` does), the default
    stabiliser carrying the colour to the frames between."""
    import clips

    from colorize_cli.imaging import color
    from colorize_cli.imaging.chroma import recombine
    from colorize_cli.inference.colorizer import Colorizer

    colorizer = Colorizer(None, render_size=render_size)
    count = len(SHOTS)
    photos = [
        np.asarray(Image.open(p).convert("RGB")) for p in validation_photos(count * clips_count)
    ]
    totals: dict[tuple[int, str], list[float]] = {}
    for c in range(clips_count):
        truth, cuts = clips.clip(photos[count * c : count * (c + 1)], 640, 480, frames)
        grays = clips.gray_frames(truth)
        truth_lab = [color.srgb_to_lab(frame) for frame in truth]
        shot = [SHOTS[i // frames] for i in range(len(truth))]
        for n in values:
            groups = temporal.network_groups(((i, g, None) for i, g in enumerate(grays)), n)
            held: list[np.ndarray] = [np.empty(0)] * len(grays)
            runs = 0
            for (first, followers), _, ab in colorizer.chroma_many(groups):
                runs += 1
                for index in [first, *followers]:
                    held[index] = ab
            stabilizer = temporal.Stabilizer()
            small = [
                np.asarray(Image.fromarray(g).resize(ab.shape[1::-1], Image.Resampling.BOX))
                for g, ab in zip(grays, held, strict=True)
            ]
            abs_ = [stabilizer(g, ab) for g, ab in zip(small, held, strict=True)]
            labs = [color.srgb_to_lab(recombine(g, ab)) for g, ab in zip(grays, abs_, strict=True)]
            for kind, (flick, _, error, de) in shot_scores(labs, truth_lab, shot, cuts).items():
                row = totals.setdefault((n, kind), [0.0, 0.0, 0.0, 0.0, 0.0])
                row[0] += flick
                row[1] += error
                row[2] += de
                row[3] += 1
                row[4] += runs / len(grays)
    return [
        {
            "every": n,
            "shot": kind,
            "flicker": flick / k,
            "error_change": error / k,
            "de": de / k,
            "network_share": share / k,
        }
        for (n, kind), (flick, error, de, k, share) in sorted(totals.items())
    ]


def luma(frames: int, render_size: int) -> list[dict]:
    """Output luma against input luma (decoded Y planes) at a few --crf values, 640x480."""
    import av
    import clips

    from colorize_cli.inference import video
    from colorize_cli.inference.colorizer import Colorizer

    def planes(path: Path) -> list[np.ndarray]:
        with av.open(str(path)) as container:
            return [
                np.frombuffer(f.planes[0], np.uint8)
                .reshape(-1, f.planes[0].line_size)[: f.height, : f.width]
                .astype(np.int16)
                for f in container.decode(container.streams.video[0])
            ]

    def sound(path: Path) -> list[bytes]:
        with av.open(str(path)) as container:
            return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]

    colorizer = Colorizer(None, render_size=render_size)
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in validation_photos(len(SHOTS))]
    truth, _ = clips.clip(photos, 640, 480, frames)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "clip.mp4"
        clips.write_video(source, clips.gray_frames(truth), audio=True)
        before = planes(source)
        for crf in (0, 18, 28):
            out = Path(tmp) / f"out-{crf}.mp4"
            video.colorize_video(source, out, colorizer, crf=crf)
            after = planes(out)
            diff = np.concatenate(
                [np.abs(a - b).ravel() for a, b in zip(before, after, strict=True)]
            )
            mse = float(np.mean(np.square(diff.astype(np.float64))))
            rows.append(
                {
                    "crf": crf,
                    "frames": len(before),
                    "mean": float(diff.mean()),
                    "max": int(diff.max()),
                    "psnr": float("inf") if mse == 0 else 10 * np.log10(255**2 / mse),
                    "audio_same": sound(out) == sound(source),
                }
            )
    return rows


def default_network_every() -> int:
    """This tree's default (imported late: a child running older code, which lacks it, never
    needs it)."""
    from colorize_cli.constants import VIDEO_NETWORK_EVERY

    return VIDEO_NETWORK_EVERY


def make_clip(path: Path, size: str, frames: int) -> None:
    import clips

    width, height = SIZES[size]
    photo = np.asarray(Image.open(sorted(DEV.glob("*.jpg"))[0]).convert("RGB"))
    big = np.asarray(Image.fromarray(photo).resize((2 * width, 2 * height)))
    gray = clips.gray_frames(clips.pan(big, width, height, frames))
    clips.write_video(path, gray, rate=25, audio=True, options={"crf": "18", "preset": "fast"})


def speed_child(
    path: Path,
    render_size: int,
    crf: int,
    network_every: int | None = None,
    preset: str | None = None,
) -> dict:
    """One run in this (fresh) process: warm the model on a frame, then time the whole video
    (`network_every`, `preset` None: the code's own default, for code that predates them)."""
    import clips

    from colorize_cli.inference import video
    from colorize_cli.inference.colorizer import Colorizer

    colorizer = Colorizer(MODEL, render_size=render_size)
    first = clips.read_frames(path, "gray")[0]
    for _ in range(2):  # traces the render shape outside the timing
        colorizer.colorize(first)
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM)
    colorizer.network_seconds = 0.0
    out = path.with_name(path.stem + ".color.mp4")
    started = time.perf_counter()
    options = {} if network_every is None else {"network_every": network_every}
    options |= {} if preset is None else {"preset": preset}
    report = video.colorize_video(path, out, colorizer, crf=crf, **options)
    seconds = time.perf_counter() - started
    # The network alone on batches of the same shape, nothing beside it: the floor of a frame.
    x = np.repeat(colorizer.network_input(first)[None, ..., None], colorizer.batch_size, 0)
    colorizer.backend.run(x)
    alone_started = time.perf_counter()
    for _ in range(2):
        colorizer.backend.run(x)
    alone = (time.perf_counter() - alone_started) / (2 * colorizer.batch_size)
    return {
        "code": str(Path(video.__file__).parents[2]),
        "frames": report.frames,
        "fps": report.frames / seconds,
        "outside_ms": 1000 * (seconds - colorizer.network_seconds) / report.frames,
        "network_share": colorizer.network_seconds / seconds,
        "network_alone_ms": 1000 * alone,
        "peak_rss_mb": rss_mb("VmHWM"),
    }


def transcode_child(path: Path) -> dict:
    """The ceiling: decode -> libx264 at crf 18 with PyAV, nothing else (no sound, no colour)."""
    import av

    started = time.perf_counter()
    frames = 0
    with av.open(str(path)) as source, av.open(str(path.with_suffix(".bare.mp4")), "w") as out:
        video = source.streams.video[0]
        video.thread_type = "AUTO"
        stream = out.add_stream("libx264", rate=video.average_rate, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        stream.time_base = stream.codec_context.time_base = video.time_base
        for frame in source.decode(video):
            out.mux(stream.encode(frame))
            frames += 1
        out.mux(stream.encode(None))
    return {"frames": frames, "fps": frames / (time.perf_counter() - started)}


def child(*args: str, tree: Path | None = None) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "_child", *args],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(tree),
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def speed(
    sizes: list[str],
    lengths: list[int],
    render_size: int,
    before: str | None,
    rounds: int,
    network_every: list[int],
    presets: list[str] | None = None,
) -> list[dict]:
    """Per clip, `rounds` times: the bare transcode, then colorize (the code at `before`, then
    this tree's with each `network_every`); each keeps its fastest round, the usual estimate on
    a machine others load."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        trees: dict[str, tuple[Path | None, list[str]]] = {
            f"after, network every {n}" + (f", {preset}" if preset else ""): (
                None,
                [str(n), *([preset] if preset else [])],
            )
            for n in network_every
            for preset in presets or [None]
        }
        if before:
            trees = {f"before ({before})": (tree_at(before, Path(tmp)), []), **trees}
        for size in sizes:
            for frames in lengths:
                path = Path(tmp) / f"{size}-{frames}.mp4"
                make_clip(path, size, frames)
                best: dict[str, dict] = {}
                for _ in range(rounds):
                    runs = {"bare": child("transcode", str(path))}
                    for name, (tree, extra) in trees.items():
                        arguments = ["speed", str(path), str(render_size), "18", *extra]
                        runs[name] = child(*arguments, tree=tree)
                        assert runs[name]["code"] == str(tree or ROOT), runs[name]["code"]
                    colour = path.with_name(path.stem + ".color.mp4")  # the last run's output
                    runs["bare colour"] = child("transcode", str(colour))
                    print(runs, file=sys.stderr)
                    for name, run in runs.items():
                        if name not in best or run["fps"] > best[name]["fps"]:
                            best[name] = run
                for name in trees:
                    row = {
                        **best[name],
                        "code": name,
                        "size": size,
                        "bare_fps": best["bare"]["fps"],
                        "bare_colour_fps": best["bare colour"]["fps"],
                    }
                    row["over_bare"] = row["bare_fps"] / row["fps"]
                    rows.append(row)
    return rows


def presets(clips_count: int, frames: int, render_size: int, names: list[str]) -> list[dict]:
    """Bitrate and fidelity of x264's presets at crf 18 against the lossless output (`presets`)."""
    import clips

    from colorize_cli.inference import video
    from colorize_cli.inference.colorizer import Colorizer

    colorizer = Colorizer(MODEL, render_size=render_size)
    count = len(SHOTS)
    photos = [
        np.asarray(Image.open(p).convert("RGB")) for p in validation_photos(count * clips_count)
    ]
    totals = {name: {"bits": 0.0, "seconds": 0.0, "y": [], "uv": [], "grain": []} for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        for c in range(clips_count):
            truth, _ = clips.clip(photos[count * c : count * (c + 1)], 640, 480, frames)
            source = Path(tmp, f"{c}.mp4")
            clips.write_video(source, clips.gray_frames(truth))
            reference = Path(tmp, f"{c}-lossless.mp4")
            video.colorize_video(source, reference, colorizer, crf=0)
            wanted = clips.read_frames(reference, "yuv420p")
            for name in names:
                out = Path(tmp, f"{c}-{name}.mp4")
                video.colorize_video(source, out, colorizer, crf=18, preset=name)
                got = clips.read_frames(out, "yuv420p")
                row = totals[name]
                row["bits"] += out.stat().st_size * 8
                row["seconds"] += len(got) / 24
                for i, (a, b) in enumerate(zip(wanted, got, strict=True)):
                    error = (a.astype(np.float64) - b) ** 2
                    row["y"].append(error[:480].mean())
                    row["uv"].append(error[480:].mean())
                    if SHOTS[i // frames] == "grain":
                        row["grain"].append(error[:480].mean())

    def psnr(errors: list[float]) -> float:
        return float(10 * np.log10(255**2 / np.mean(errors)))

    return [
        {
            "preset": name,
            "kbit_s": row["bits"] / row["seconds"] / 1000,
            "psnr_y": psnr(row["y"]),
            "psnr_uv": psnr(row["uv"]),
            "psnr_y_grain": psnr(row["grain"]),
        }
        for name, row in totals.items()
    ]


def agreement(revision: str, clips_count: int, frames: int, render_size: int) -> dict:
    """Mean CIEDE2000 between the code at `revision`'s and this tree's output of the same clips."""
    import clips

    from colorize_cli.imaging import color, metrics

    photos = [
        np.asarray(Image.open(p).convert("RGB"))
        for p in validation_photos(len(SHOTS) * clips_count)
    ]
    means = []
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = tree_at(revision, Path(tmp))
        for c in range(clips_count):
            truth, _ = clips.clip(photos[len(SHOTS) * c : len(SHOTS) * (c + 1)], 640, 480, frames)
            outputs = []
            for tree in (old_tree, None):
                folder = Path(tmp, f"{c}-{'old' if tree else 'new'}")
                folder.mkdir()
                clips.write_video(folder / "clip.mp4", clips.gray_frames(truth))
                # The network on every frame, as the old code ran it: the colour path alone differs.
                every = [] if tree else ["1"]
                child("speed", str(folder / "clip.mp4"), str(render_size), "0", *every, tree=tree)
                outputs.append(clips.read_frames(folder / "clip.color.mp4"))
            for old, new in zip(*outputs, strict=True):
                lab_old, lab_new = color.srgb_to_lab(old), color.srgb_to_lab(new)
                means.append(metrics.mean_ciede2000(lab_old, lab_new))
    return {"frames": len(means), "mean": float(np.mean(means)), "largest": float(np.max(means))}


def profile(size: str, frames: int, render_size: int) -> None:
    """cProfile of one `colorize_video` run (after a warm-up): where the time of a frame goes."""
    import cProfile
    import pstats

    import clips

    from colorize_cli.inference import video
    from colorize_cli.inference.colorizer import Colorizer

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        make_clip(path, size, frames)
        colorizer = Colorizer(MODEL, render_size=render_size)
        colorizer.colorize(clips.read_frames(path, "gray")[0])
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        video.colorize_video(path, path.with_name("out.mp4"), colorizer)
        profiler.disable()
        seconds = time.perf_counter() - started
    print(f"{size}, {frames} frames: {seconds:.2f} s, network {colorizer.network_seconds:.2f} s")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def steps(size: str, frames: int, render_size: int) -> dict[str, float]:
    """Milliseconds a frame of each step of `colorize_video`, one step at a time (`steps`)."""
    import av

    from colorize_cli.config import VIDEO_CRF, VIDEO_NETWORK_EVERY, VIDEO_PRESET
    from colorize_cli.inference import video, video_frames
    from colorize_cli.inference.colorizer import Colorizer

    timings: dict[str, float] = {}

    def timed(name: str, work):  # noqa: ANN001, ANN202 - any step
        started = time.perf_counter()
        result = work()
        timings[name] = 1000 * (time.perf_counter() - started) / frames
        return result

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        make_clip(path, size, frames)
        colorizer = Colorizer(MODEL, render_size=render_size)

        def decode() -> list:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                return list(container.decode(stream))

        decoded = decode()  # warms the decoder and the file cache
        layout = video_frames.layout_of(decoded[0])
        colorizer.colorize(video_frames.planes(decoded[0], layout).gray)
        decoded = timed("decode", decode)
        planes = timed(
            "luma, gray and chroma level", lambda: [video_frames.planes(f, layout) for f in decoded]
        )
        timed("glance (cuts)", lambda: [temporal.glance_at(p.gray) for p in planes])
        leads = [p.gray for p in planes[::VIDEO_NETWORK_EVERY]]
        predicted = timed(
            "network", lambda: [ab for _, _, ab in colorizer.chroma_many(enumerate(leads))]
        )
        abs_ = [predicted[i // VIDEO_NETWORK_EVERY] for i in range(frames)]
        grids = timed(
            "render grid",
            lambda: [
                video_frames.render_grid(p.level, ab.shape[:2])
                for p, ab in zip(planes, abs_, strict=True)
            ],
        )
        stabilizer = temporal.Stabilizer()
        abs_ = timed(
            "stabiliser",
            lambda: [stabilizer(grid, ab) for grid, ab in zip(grids, abs_, strict=True)],
        )
        out = timed(
            "chroma planes",
            lambda: [
                video_frames.output_frame(p, grid, ab, layout)
                for p, grid, ab in zip(planes, grids, abs_, strict=True)
            ],
        )

        def encode() -> None:
            with av.open(str(path.with_name("steps.mp4")), "w") as container:
                options = {"crf": str(VIDEO_CRF), "preset": VIDEO_PRESET}
                stream = container.add_stream("libx264", rate=25, options=options)
                stream.width, stream.height = layout.width, layout.height
                stream.pix_fmt = layout.pix_fmt
                for index, frame in enumerate(out):
                    frame.pts = index
                    container.mux(stream.encode(frame))
                container.mux(stream.encode(None))

        timed("x264 (encode and mux)", encode)
        timings["sum of the steps"] = sum(timings.values())
        timed(
            "colorize_video, whole",
            lambda: video.colorize_video(path, path.with_name("whole.mp4"), colorizer),
        )
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "part",
        nargs="?",
        default="all",
        choices=[
            *("all", "quality", "every", "luma", "speed", "profile", "agreement", "presets"),
            "steps",
        ],
    )
    parser.add_argument("revision", nargs="?", help="agreement: the git revision to compare")
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--frames", type=int, default=16, help="frames per shot")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--lengths", nargs="+", type=int, default=[50, 150])
    parser.add_argument("--render-size", type=int, default=160)
    parser.add_argument("--before", metavar="REV", help="speed: time the code at git REV too")
    parser.add_argument("--rounds", type=int, default=1, help="speed: best of this many runs")
    parser.add_argument("--video-preset", nargs="+", help="speed: x264 presets to compare")
    parser.add_argument(
        "--network-every",
        type=int,
        nargs="+",
        default=None,
        help="the network on every N-th frame: the values to compare (every: 1 2 3 4; speed: "
        "the default of colorize_video)",
    )
    args = parser.parse_args()
    if args.part == "agreement":
        row = agreement(args.revision, args.clips, args.frames, args.render_size)
        print("| frames | mean CIEDE2000, new vs old | largest frame mean |")
        print("|---|---|---|")
        print(f"| {row['frames']} | {row['mean']:.3f} | {row['largest']:.3f} |")
        return
    if args.part == "presets":
        names = args.video_preset or ["veryfast", "faster", "medium", "slow"]
        print("| preset | kbit/s | PSNR-Y dB | PSNR-UV dB | PSNR-Y, grain shots |")
        print("|---|---|---|---|---|")
        for r in presets(args.clips, args.frames, args.render_size, names):
            print(
                f"| {r['preset']} | {r['kbit_s']:.0f} | {r['psnr_y']:.2f} | {r['psnr_uv']:.2f} "
                f"| {r['psnr_y_grain']:.2f} |"
            )
        return
    if args.part == "every":
        rows = every(args.clips, args.frames, args.render_size, args.network_every or [1, 2, 3, 4])
        print(
            "| network every | shot | frames through the network | flicker | error change "
            "| CIEDE2000 |"
        )
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['every']} | {r['shot']} | {r['network_share']:.0%} | {r['flicker']:.2f} "
                f"| {r['error_change']:.2f} | {r['de']:.3f} |"
            )
        return
    if args.part == "steps":
        size, frames = args.sizes[-1], args.lengths[0]
        print(f"| step ({size}, {frames} frames, one step at a time) | ms a frame |")
        print("|---|---|")
        for name, ms in steps(size, frames, args.render_size).items():
            print(f"| {name} | {ms:.1f} |")
        return
    if args.part == "profile":
        profile(args.sizes[-1], args.lengths[0], args.render_size)
        return
    if args.part in ("all", "quality"):
        rows = quality(args.clips, args.frames, args.render_size)
        print("| stabiliser | shot | flicker | truth's own | error change | CIEDE2000 |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['setting']} | {r['shot']} | {r['flicker']:.2f} | {r['truth']:.2f} "
                f"| {r['error_change']:.2f} | {r['de']:.2f} |"
            )
    if args.part in ("all", "luma"):
        rows = luma(args.frames, args.render_size)
        print(
            "\n| --crf | frames | mean abs Y error | max | PSNR-Y (dB) | audio packets identical |"
        )
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['crf']} | {r['frames']} | {r['mean']:.3f} | {r['max']} | {r['psnr']:.1f} "
                f"| {'yes' if r['audio_same'] else 'NO'} |"
            )
    if args.part in ("all", "speed"):
        rows = speed(
            args.sizes,
            args.lengths,
            args.render_size,
            args.before,
            args.rounds,
            args.network_every or [default_network_every()],
            args.video_preset,
        )
        print(
            "\n| code | size | frames | bare transcode fps | colorize fps | colorize time / bare "
            "| bare transcode of the colour output fps | colorize time / it "
            "| network alone ms/frame | colorize time / network alone "
            "| outside network ms/frame | network share | peak RSS (MB) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['code']} | {r['size']} | {r['frames']} | {r['bare_fps']:.2f} "
                f"| {r['fps']:.2f} | {r['over_bare']:.2f} | {r['bare_colour_fps']:.2f} "
                f"| {r['bare_colour_fps'] / r['fps']:.2f} | {r['network_alone_ms']:.0f} "
                f"| {1000 / r['fps'] / r['network_alone_ms']:.2f} | {r['outside_ms']:.0f} "
                f"| {r['network_share']:.0%} | {r['peak_rss_mb']:.0f} |"
            )


if __name__ == "__main__":
    if sys.argv[1:3] == ["_child", "transcode"]:
        print(json.dumps(transcode_child(Path(sys.argv[3]))))
    elif sys.argv[1:3] == ["_child", "speed"]:
        every = int(sys.argv[6]) if len(sys.argv) > 6 else None
        preset = sys.argv[7] if len(sys.argv) > 7 else None
        run = speed_child(Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), every, preset)
        print(json.dumps(run))
    else:
        main()
