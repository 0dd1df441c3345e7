"""Videos through `colorize apply`: clips made from dev photos (pan, zoom, grain, cuts) keep their
frames, timestamps, size, rotation, sound and subtitles and their luma; odd and hostile files get
one-line errors while the rest of the call is done, and nothing partial is ever left behind."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import av
import clips
import numpy as np
import pytest
from conftest import dev_photos, recombine_per_pixel
from PIL import Image
from typer.testing import CliRunner

from colorize_cli import fsutil
from colorize_cli.cli import app
from colorize_cli.errors import ImageError, UsageError
from colorize_cli.imaging import color, metrics
from colorize_cli.imaging.inputs import expand_inputs
from colorize_cli.inference import applying, planning, video, video_frames
from colorize_cli.inference.applying import ApplyOptions
from colorize_cli.inference.colorizer import Colorizer

W, H = 96, 64


@pytest.fixture(scope="module")
def loaded(tiny_model: Path) -> Colorizer:
    return Colorizer(tiny_model, render_size=64, batch_size=4)


@pytest.fixture(scope="module")
def truth() -> tuple[list[np.ndarray], list[bool]]:
    """18 colour frames: a pan, a zoom and a grainy still, joined by cuts."""
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in dev_photos(3)]
    return clips.clip(photos, W, H, 6)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, truth) -> Path:
    """Source videos, written once: the gray clip with sound (mp4) and variants."""
    folder = tmp_path_factory.mktemp("videos")
    frames, _ = truth
    gray = clips.gray_frames(frames)
    clips.write_video(folder / "clip.mp4", gray, audio=True)
    return folder


def copy(library: Path, name: str, to: Path) -> Path:
    shutil.copy(library / name, to / name)
    return to / name


def streams(path: Path) -> list[tuple[str, str]]:
    with av.open(str(path)) as container:
        return [(s.type, s.codec_context.name) for s in container.streams]


def decoded(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(container.streams.video[0]))


def lumas(path: Path) -> list[np.ndarray]:
    out = []
    for frame in decoded(path):
        plane = frame.planes[0]
        out.append(
            np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[
                : frame.height, : frame.width
            ]
        )
    return out


def packets(path: Path, kind: str) -> list[tuple[bytes, float]]:
    with av.open(str(path)) as container:
        stream = container.streams.get(**{kind: 0})[0]
        return [(bytes(p), float(p.pts * p.time_base)) for p in container.demux(stream) if p.size]


def test_a_clip_keeps_its_frames_timestamps_size_sound_and_luma(
    library: Path, tmp_path: Path, loaded: Colorizer
) -> None:
    source = copy(library, "clip.mp4", tmp_path)
    (outcome,) = applying.apply(ApplyOptions([str(source)], crf=0), colorizer=loaded)
    assert (outcome.status, outcome.output) == ("written", tmp_path / "clip.color.mp4")
    assert streams(outcome.output) == [("video", "h264"), ("audio", "aac")]
    before, after = decoded(source), decoded(outcome.output)
    assert [(f.width, f.height) for f in after] == [(W, H)] * len(before) == [(W, H)] * 18
    assert [f.time for f in after] == [f.time for f in before]
    assert {f.format.name for f in after} == {"yuv420p"}
    assert packets(outcome.output, "audio") == packets(source, "audio")
    for y_in, y_out in zip(lumas(source), lumas(outcome.output), strict=True):
        np.testing.assert_array_equal(y_out, y_in)  # crf 0 is lossless: the luma is the input's


def test_at_the_default_crf_the_luma_is_within_encoder_error(
    library: Path, tmp_path: Path, loaded: Colorizer
) -> None:
    source = copy(library, "clip.mp4", tmp_path)
    (outcome,) = applying.apply(ApplyOptions([str(source)]), colorizer=loaded)
    errors = [
        np.abs(a.astype(int) - b).mean()
        for a, b in zip(lumas(source), lumas(outcome.output), strict=True)
    ]
    assert np.mean(errors) < 3.0


def test_variable_frame_rate_timestamps_and_subtitles_survive(
    truth, tmp_path: Path, loaded: Colorizer
) -> None:
    frames, _ = truth
    pts = [0, 40, 80, 150, 190, 300, 340, 380, 500, 540, 580, 620]
    plain = tmp_path / "plain.mkv"
    clips.write_video(plain, frames[:12], pts=pts, time_base=Fraction(1, 1000))
    (tmp_path / "s.srt").write_text("1\n00:00:00,100 --> 00:00:00,300\nhello\n")
    source = tmp_path / "vfr.mkv"
    with (
        av.open(str(plain)) as video_in,
        av.open(str(tmp_path / "s.srt")) as subs,
        av.open(str(source), "w") as out,
    ):
        targets = {
            video_in.streams.video[0]: out.add_stream_from_template(video_in.streams.video[0]),
            subs.streams.subtitles[0]: out.add_stream_from_template(subs.streams.subtitles[0]),
        }
        for stream, target in targets.items():
            for packet in stream.container.demux(stream):
                if packet.size:
                    packet.stream = target
                    out.mux(packet)
    (outcome,) = applying.apply(ApplyOptions([str(source)]), colorizer=loaded)
    assert outcome.status == "written", outcome
    assert outcome.output == tmp_path / "vfr.color.mkv"
    assert [f.time for f in decoded(outcome.output)] == [p / 1000 for p in pts]
    assert streams(outcome.output) == [("video", "h264"), ("subtitle", "srt")]
    assert packets(outcome.output, "subtitles") == packets(source, "subtitles")


def test_odd_sizes_ten_bit_and_rotated_phone_videos_are_colorized(
    truth, tmp_path: Path, loaded: Colorizer
) -> None:
    frames, _ = truth
    odd = [np.asarray(Image.fromarray(f).resize((321, 241))) for f in frames[:4]]
    clips.write_video(tmp_path / "odd.mkv", odd, pix_fmt="yuv444p")
    clips.write_video(tmp_path / "deep.mkv", frames[:6], pix_fmt="yuv420p10le")
    clips.write_video(tmp_path / "phone.mp4", frames[:6], rotation=90)
    outcomes = {
        Path(o.source).name: o
        for o in applying.apply(ApplyOptions([str(tmp_path)]), colorizer=loaded)
    }
    assert {name: o.status for name, o in outcomes.items()} == dict.fromkeys(
        ["deep.mkv", "odd.mkv", "phone.mp4"], "written"
    )
    odd_out = decoded(outcomes["odd.mkv"].output)
    assert [(f.width, f.height, f.format.name) for f in odd_out] == [(321, 241, "yuv444p")] * 4
    deep_in, deep_out = lumas_10bit(tmp_path / "deep.mkv"), lumas(outcomes["deep.mkv"].output)
    assert len(deep_out) == 6
    assert np.mean([np.abs(a - b).mean() for a, b in zip(deep_in, deep_out, strict=True)]) < 2.5
    phone = decoded(outcomes["phone.mp4"].output)
    assert [(f.width, f.height, f.rotation) for f in phone] == [(W, H, 90)] * 6


class RecordingColorizer:
    """Stands in for a Colorizer: no colour, and it keeps the grays the network would see."""

    batch_size = 4

    def __init__(self) -> None:
        self.grays: list[np.ndarray] = []
        self.held: list[int] = []  # the pixels each network frame's followers hold

    def chroma_many(self, items, held=None):
        for tag, gray, *_ in items:
            self.grays.append(gray)
            self.held.append(held(tag))
            yield tag, gray, np.zeros((*gray.shape, 2), np.float32)


def test_the_network_sees_a_rotated_phone_video_upright(truth, tmp_path: Path) -> None:
    frames, _ = truth
    upright = [np.ascontiguousarray(np.rot90(f, -1)) for f in frames[:4]]  # a portrait shot
    stored = [np.ascontiguousarray(np.rot90(f, 1)) for f in upright]  # as a phone stores it...
    clips.write_video(tmp_path / "phone.mp4", stored, rotation=-90)  # ...saying "turn it back"
    recorder = RecordingColorizer()
    video.colorize_video(
        tmp_path / "phone.mp4", tmp_path / "out.mp4", recorder, crf=0, network_every=1
    )
    assert [g.shape for g in recorder.grays] == [(W, H)] * 4
    for seen, expected in zip(recorder.grays, clips.gray_frames(upright), strict=True):
        assert np.abs(seen.astype(int) - expected).mean() < 3
    assert [(f.width, f.height, f.rotation) for f in decoded(tmp_path / "out.mp4")] == [
        (W, H, -90)
    ] * 4


def test_planes_count_each_array_they_hold_once() -> None:
    """A frame's bytes in the batch budget: in full range the gray is the luma, in 4:4:4 the
    chroma level is the gray."""
    luma = np.zeros((H, W), np.uint8)
    gray = luma + 1
    level = np.zeros((H // 2, W // 2), np.uint8)
    assert video_frames.Planes(luma, gray, level).nbytes == 2 * W * H + W * H // 4
    assert video_frames.Planes(luma, luma, level).nbytes == W * H + W * H // 4
    assert video_frames.Planes(luma, gray, gray).nbytes == 2 * W * H
    assert video_frames.Planes(luma, luma, luma).nbytes == W * H


class LeftRedColorizer:
    """Stands in for a Colorizer: red on the left half of the frame it is given, no colour on
    the right."""

    batch_size = 4

    def chroma_many(self, items, held=None):
        for tag, gray, *_ in items:
            ab = np.zeros((*gray.shape, 2), np.float32)
            ab[:, : gray.shape[1] // 2, 0] = 60.0
            yield tag, gray, ab


@pytest.mark.parametrize("stabilize", [True, False])
def test_a_rotated_phone_video_gets_its_colour_where_the_network_saw_it(
    tmp_path: Path, stabilize: bool
) -> None:
    """The network's colour, made upright, goes back to the frame as stored: turned upright by
    the file's display rotation, the left half the network saw is the red half."""
    upright = [np.full((W, H), 128, np.uint8)] * 3  # a portrait shot of mid gray
    stored = [np.ascontiguousarray(np.rot90(f, 1)) for f in upright]
    clips.write_video(tmp_path / "phone.mp4", stored, rotation=-90)
    out = tmp_path / "out.mp4"
    video.colorize_video(tmp_path / "phone.mp4", out, LeftRedColorizer(), 0, stabilize)
    for frame in decoded(out):
        assert frame.rotation == -90
        lab = color.srgb_to_lab(np.rot90(frame.to_ndarray(format="rgb24"), -1))
        assert lab.shape[:2] == (W, H)
        assert lab[:, : H // 4, 1].mean() > 20  # the left quarter, upright: red
        assert np.abs(lab[:, -H // 4 :, 1:]).mean() < 3  # the right quarter: gray


def test_the_network_runs_on_every_nth_frame_of_a_shot_and_at_each_cut(
    library: Path, truth, tmp_path: Path
) -> None:
    """Three shots of 6 frames: with --network-every 4 the network sees frames 0, 4 | 6, 10 |
    12, 16 (each cut restarts the count), and every frame is still written, with its own
    timestamp and luma."""
    frames, _ = truth
    recorder = RecordingColorizer()
    out = tmp_path / "out.mp4"
    video.colorize_video(library / "clip.mp4", out, recorder, crf=0, network_every=4)
    grays = clips.gray_frames(frames)
    assert len(recorder.grays) == 6
    for seen, index in zip(recorder.grays, [0, 4, 6, 10, 12, 16], strict=True):
        assert np.abs(seen.astype(int) - grays[index]).mean() < 3, index
    # The frames that wait for a network frame's colour count in the batch's budget: each its
    # luma, its gray (limited range: a plane of its own) and the 4:2:0 samples' mean gray.
    frame = 2 * W * H + (W // 2) * (H // 2)
    assert recorder.held == [3 * frame, frame] * 3
    written, source = decoded(out), decoded(library / "clip.mp4")
    assert [f.pts for f in written] == [f.pts for f in source]
    for got, expected in zip(lumas(out), lumas(library / "clip.mp4"), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_every_other_frame_agrees_with_every_frame(library: Path, tmp_path: Path) -> None:
    """The default (the network on every other frame) against every frame, the bundled model on
    the pan, zoom and grain clip, losslessly encoded: the mean CIEDE2000 between the two."""
    bundled = Colorizer(None, render_size=64, batch_size=4)
    outputs = []
    for every in (1, 2):
        out = tmp_path / f"every-{every}.mp4"
        video.colorize_video(library / "clip.mp4", out, bundled, crf=0, network_every=every)
        outputs.append([color.srgb_to_lab(f.to_ndarray(format="rgb24")) for f in decoded(out)])
    distances = [metrics.mean_ciede2000(a, b) for a, b in zip(*outputs, strict=True)]
    # Each shot's first frame runs the network with a fresh stabiliser in both: the same colour.
    assert [distances[i] for i in (0, 6, 12)] == [0.0] * 3
    # Measured 0.64 mean, 1.64 at most (96x64 frames at render size 64, so a frame's colour
    # moves a lot from one frame to the next; docs/video.md has the figures at 640x480).
    assert np.mean(distances) < 1.0 and max(distances) < 2.5, distances


class FlickeringColorizer:
    """Stands in for a Colorizer that predicts a fresh random colour cast every frame."""

    batch_size = 4

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def chroma_many(self, items, held=None):
        for tag, gray, *_ in items:
            cast = self.rng.normal(0, 8, 2).astype(np.float32)
            yield tag, gray, np.broadcast_to(cast, (*gray.shape, 2)).copy()


def test_stabilize_steadies_the_colour_of_a_still_shot(truth, tmp_path: Path) -> None:
    frames, _ = truth
    clips.write_video(tmp_path / "still.mp4", clips.grain(frames[12], W, H, 12))

    def chroma_change(stabilize: bool) -> float:
        out = tmp_path / f"out-{stabilize}.mp4"
        video.colorize_video(tmp_path / "still.mp4", out, FlickeringColorizer(), 0, stabilize)
        uv = [f.to_ndarray(format="yuv444p")[1:].astype(float) for f in decoded(out)]
        return float(np.mean([np.abs(b - a).mean() for a, b in zip(uv, uv[1:], strict=False)]))

    assert chroma_change(True) < 0.5 * chroma_change(False)


def _per_pixel_frame(
    planes: video_frames.Planes, grid: np.ndarray, ab: np.ndarray, layout: video_frames.Layout
) -> av.VideoFrame:
    """The output frame before issue 22, the reference the chroma planes are held to: a*b* at every
    pixel, Lab -> sRGB, the gray put back, swscale's RGB -> YUV, then the input's luma."""
    luma, gray = planes.luma, planes.gray
    height, width = gray.shape
    rgb = recombine_per_pixel(gray, ab)
    matrix = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9}[layout.colorspace]  # swscale's constants
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format=layout.pix_fmt,
        src_colorspace=matrix,
        dst_colorspace=matrix,
        dst_color_range=2 if layout.full_range else 1,
    )
    plane = frame.planes[0]
    np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:height, :width] = luma
    return frame


def test_chroma_planes_agree_with_the_per_pixel_path(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = Colorizer(None, render_size=64, batch_size=4)
    outputs = []
    for name in ("new", "old"):
        if name == "old":
            monkeypatch.setattr(video_frames, "output_frame", _per_pixel_frame)
        video.colorize_video(library / "clip.mp4", tmp_path / f"{name}.mp4", bundled, crf=0)
        outputs.append([f.to_ndarray(format="rgb24") for f in decoded(tmp_path / f"{name}.mp4")])
    new, old = outputs
    assert len(new) == len(old) == 18
    distances = [
        metrics.mean_ciede2000(color.srgb_to_lab(a), color.srgb_to_lab(b))
        for a, b in zip(new, old, strict=True)
    ]
    # Measured: 0.32 on average here (0.38 at most); 0.41 (0.54) on docs/video.md's 640x480 clips.
    assert np.mean(distances) < 0.6 and max(distances) < 1.0, distances
    for y_new, y_source in zip(
        lumas(tmp_path / "new.mp4"), lumas(library / "clip.mp4"), strict=True
    ):
        np.testing.assert_array_equal(y_new, y_source)


def lumas_10bit(path: Path) -> list[np.ndarray]:
    """A 10-bit clip's luma at 8 bits, for comparing with the 8-bit output."""
    return [f.to_ndarray(format="yuv420p10le")[: f.height].astype(float) / 4 for f in decoded(path)]


def hostile(folder: Path, library: Path) -> dict[str, str]:
    """Files that are not usable videos, and the reason each must give."""
    (folder / "notes.mp4").write_text("not a video, just text\n")
    noise = np.random.default_rng(0).integers(0, 256, (24, H, W), dtype=np.uint8)
    clips.write_video(folder / "whole.mkv", list(noise))
    data = (folder / "whole.mkv").read_bytes()
    (folder / "cut.mkv").write_bytes(data[: len(data) // 2])
    (folder / "whole.mkv").unlink()
    mp4 = (library / "clip.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(mp4[: len(mp4) * 2 // 3])
    for name, with_video in (("sound.mp4", False), ("empty.mkv", True)):
        with av.open(str(folder / name), "w") as out:
            if with_video:  # a video stream that never gets a frame
                stream = out.add_stream("libx264", rate=24)
                stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
            sound = out.add_stream("aac", rate=16000)
            sound.layout = "mono"
            piece = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "flt", "mono")
            piece.sample_rate, piece.pts = 16000, 0
            out.mux(sound.encode(piece))
            out.mux(sound.encode(None))
    return {
        "notes.mp4": "not a readable video",
        "cut.mkv": "truncated or damaged",
        "cut.mp4": "not a readable video",
        "sound.mp4": "no video stream (audio only)",
        "empty.mkv": "no video frames",
    }


def test_hostile_files_fail_one_by_one_and_leave_nothing_behind(
    library: Path, tmp_path: Path, loaded: Colorizer
) -> None:
    expected = hostile(tmp_path, library)
    good = copy(library, "clip.mp4", tmp_path)
    outcomes = list(applying.apply(ApplyOptions([str(tmp_path)]), colorizer=loaded))
    failed = {Path(o.source).name: o.reason for o in outcomes if o.status == "failed"}
    assert failed.keys() == expected.keys()
    for name, reason in failed.items():
        assert reason.startswith(expected[name]), (name, reason)
        assert "\n" not in reason
    assert [o.output for o in outcomes if o.status == "written"] == [tmp_path / "clip.color.mp4"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([*expected, good.name, "clip.color.mp4"])


@pytest.mark.parametrize("step", ["render_grid", "output_frame"])  # the main, encoding thread
def test_an_interrupted_video_leaves_no_output_and_no_temporary(
    library: Path, tmp_path: Path, loaded: Colorizer, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    source = copy(library, "clip.mp4", tmp_path)
    calls = []
    work = getattr(video_frames, step)

    def interrupted(*args: object) -> object:
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return work(*args)

    monkeypatch.setattr(video_frames, step, interrupted)
    with pytest.raises(KeyboardInterrupt):
        list(applying.apply(ApplyOptions([str(source)]), colorizer=loaded))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    assert fsutil.temp_paths(tmp_path / "clip.color.mp4") == []


def test_output_names_follow_the_photo_rules(library: Path, tmp_path: Path) -> None:
    source = copy(library, "clip.mp4", tmp_path)
    (tmp_path / "old.webm").write_bytes(b"")
    jobs, known = planning.plan(ApplyOptions([str(tmp_path)], out_dir=tmp_path / "out"))
    assert [(j.source.name, j.output) for j in jobs] == [
        ("clip.mp4", tmp_path / "out" / "clip.mp4"),
        ("old.webm", tmp_path / "out" / "old.mkv"),  # WebM cannot hold H.264
    ]
    _, known = planning.plan(ApplyOptions([str(source)], output=str(tmp_path / "x.png")))
    assert [o.reason for o in known] == [
        "a video is written as .mp4, .m4v, .mov, .mkv, .avi, not x.png"
    ]
    assert expand_inputs([str(tmp_path)])[0] == []  # prepare and eval never see videos


def test_colorize_video_names_the_source_in_its_errors(tmp_path: Path, loaded: Colorizer) -> None:
    (tmp_path / "a.mp4").write_text("text")
    with pytest.raises(ImageError) as caught:
        video.colorize_video(tmp_path / "a.mp4", tmp_path / "b.mp4", loaded)
    assert caught.value.path == str(tmp_path / "a.mp4")
    assert not (tmp_path / "b.mp4").exists()


def test_a_playlist_that_would_read_another_file_is_refused(
    library: Path, tmp_path: Path, loaded: Colorizer
) -> None:
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(
        "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\n"
        f"file://{library / 'clip.mp4'}\n#EXT-X-ENDLIST\n"
    )
    with av.open(str(playlist)) as unguarded:  # what ffmpeg would do with it on its own
        assert unguarded.format.name == "hls" and unguarded.streams.video
    with pytest.raises(ImageError, match="not a supported container"):
        video.colorize_video(playlist, tmp_path / "out.mp4", loaded)
    assert not (tmp_path / "out.mp4").exists()


def test_cli_mixes_photos_and_videos_and_exits_1_when_some_fail(
    library: Path, tmp_path: Path, tiny_model: Path
) -> None:
    clip = copy(library, "clip.mp4", tmp_path)
    photo = tmp_path / "photo.jpg"
    shutil.copy(dev_photos(1)[0], photo)
    (tmp_path / "bad.mp4").write_text("text")
    runner = CliRunner()
    common = ["--model", str(tiny_model), "--render-size", "64", "--no-stabilize", "--crf", "23"]
    result = runner.invoke(app, ["apply", str(clip), str(photo), *common])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        str(tmp_path / "photo.color.jpg"),
        str(tmp_path / "clip.color.mp4"),
    ]
    result = runner.invoke(app, ["apply", str(tmp_path / "bad.mp4"), str(clip), *common])
    assert result.exit_code == 1
    assert result.stdout == ""  # the clip was skipped: its output exists
    assert "bad.mp4: not a readable video" in result.stderr
    result = runner.invoke(app, ["apply", str(tmp_path / "bad.mp4"), *common])
    assert result.exit_code == 2
    result = runner.invoke(app, ["apply", str(clip), "--crf", "60", "--overwrite"])
    assert result.exit_code == 2
    assert "--crf must be between 0 and 51" in result.stderr
    # x264 writes its settings into the stream: the default preset is `faster` (subme 4).
    assert b" subme=4 " in (tmp_path / "clip.color.mp4").read_bytes()
    fast = [str(clip), "--video-preset", "veryfast", "--overwrite", *common]
    result = runner.invoke(app, ["apply", *fast])
    assert result.exit_code == 0, result.output
    assert b" subme=2 " in (tmp_path / "clip.color.mp4").read_bytes()
    result = runner.invoke(app, ["apply", str(clip), "--video-preset", "warp", "--overwrite"])
    assert result.exit_code == 2 and "warp" in result.stderr
    with pytest.raises(UsageError, match="--video-preset must be one of ultrafast, superfast"):
        ApplyOptions([str(clip)], video_preset="warp")


def test_network_every_takes_1_to_25_from_the_cli(
    library: Path, tmp_path: Path, tiny_model: Path
) -> None:
    """Out of range is a usage error naming the range (exit 2, nothing written); 25 runs, its
    frames holding the colour of every 25th (the clip's 6-frame shots: of each shot's first)."""
    clip = copy(library, "clip.mp4", tmp_path)
    runner = CliRunner()
    for every in ("0", "26"):
        result = runner.invoke(app, ["apply", str(clip), "--network-every", every])
        assert result.exit_code == 2
        assert f"--network-every must be between 1 and 25, got {every}" in result.stderr
        assert not (tmp_path / "clip.color.mp4").exists()
    model = ["--model", str(tiny_model), "--render-size", "64"]
    result = runner.invoke(app, ["apply", str(clip), "--network-every", "25", *model])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [str(tmp_path / "clip.color.mp4")]
    assert len(decoded(tmp_path / "clip.color.mp4")) == len(decoded(clip))
