"""Hostile inputs from the red team (issue 19), one test per root cause, each through the real CLI:
the exit code, a one-line reason naming the file, no traceback, and the good inputs of the call
done. The scripts that found them are in ../shared/redteam/; docs/robustness.md has the table.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from colorize_cli import fsutil
from colorize_cli.data import shard_writer, shards
from colorize_cli.imaging import color, images

# A strict UTF-8 stdio, as under en_US.UTF-8 (C.UTF-8 would hide the non-UTF-8 name bugs).
STRICT_UTF8 = {**os.environ, "PYTHONIOENCODING": "utf-8"}


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def errors(self) -> list[str]:
        """stderr's lines that report a failed input or an error."""
        return [line for line in self.stderr.splitlines() if line.startswith(("error:", "failed"))]


def colorize(
    *args: str | Path,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    prefix: tuple[str, ...] = (),
    timeout: float = 120,
) -> Run:
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "colorize_cli", *map(os.fsencode, map(str, args))],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
    stderr = result.stderr.decode("utf-8", "surrogateescape")
    assert "Traceback" not in stderr, stderr
    return Run(result.returncode, result.stdout, stderr)


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 3) % 256, (y * 5) % 256, (x + y) % 256], axis=-1).astype(np.uint8)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    """A small good photo in an empty working folder."""
    path = tmp_path / "good.jpg"
    Image.fromarray(gradient()).save(path)
    return path


def outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# 01, 02 ------------------------------------------------------------------------------------------


def test_names_too_long_fail_alone(good: Path) -> None:
    """An input whose output name passes 255 bytes, and a missing 300-character path: each
    fails in one line; the good photo is done (was: OSError ENAMETOOLONG, nothing done)."""
    folder = good.parent
    long_input = folder / ("a" * 246 + ".jpg")
    shutil.copy(good, long_input)
    run = colorize("apply", long_input, "b" * 300 + ".jpg", good, cwd=folder)
    assert run.returncode == 1
    assert run.stdout.decode().split() == [str(folder / "good.color.jpg")]
    assert run.errors == [
        f"failed: {'b' * 300}.jpg: file name too long",
        f"failed: {long_input}: cannot write: file name too long",
    ]
    run = colorize("info", "x" * 300 + ".h5", cwd=folder)
    assert run.returncode == 2 and run.errors[-1].endswith("cannot read: file name too long")


# 03 ----------------------------------------------------------------------------------------------


def no_dac_override() -> tuple[str, ...]:
    """A prefix that makes root obey permissions (setpriv drops its override); () for others."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to make root obey file permissions")
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")


def test_a_folder_without_search_permission_fails_its_photos_alone(good: Path) -> None:
    folder = good.parent
    locked = folder / "locked"
    locked.mkdir()
    shutil.copy(good, locked / "x.jpg")
    locked.chmod(0)
    try:
        prefix = no_dac_override()
        run = colorize(
            "apply", "locked/x.jpg", "good.jpg", "--out-dir", "out", cwd=folder, prefix=prefix
        )
        assert run.returncode == 1, run.stderr
        assert run.errors == ["failed: locked/x.jpg: permission denied"]
        assert outputs(folder / "out") == ["good.jpg"]
        args = ("prepare", "locked/x.jpg", "good.jpg", "d.h5", "--size", "16", "--jobs", "1")
        run = colorize(*args, "--val-fraction", "0", cwd=folder, prefix=prefix)
        assert run.returncode == 1, run.stderr
        assert "skipped locked/x.jpg: permission denied" in run.stderr
        assert (folder / "d.h5").is_file()
    finally:
        locked.chmod(0o755)


# 04 ----------------------------------------------------------------------------------------------


def test_names_that_are_not_utf8_survive_a_strict_utf8_locale(good: Path) -> None:
    """Printed as their own bytes on stdout, read as such from `find -print0`, shown by info."""
    folder = good.parent
    cafe = os.fsdecode(b"caf\xe9.jpg")
    shutil.copy(good, folder / cafe)
    run = colorize("apply", cafe, "good.jpg", env=STRICT_UTF8, cwd=folder)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split(b"\n")[:2] == [b"caf\xe9.color.jpg", b"good.color.jpg"]

    listed = b"\0".join([b"caf\xe9.jpg", b"good.jpg"]) + b"\0"
    run = colorize(
        "apply", "-", "-0", "--out-dir", "out", stdin=listed, env=STRICT_UTF8, cwd=folder
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"out/caf\xe9.jpg\0out/good.jpg\0"

    shard = folder / os.fsdecode(b"caf\xe9.h5")
    write_shard(shard, 2)
    run = colorize("info", shard.name, env=STRICT_UTF8, cwd=folder)
    assert run.returncode == 0, run.stderr
    assert b"caf\xe9.h5" in run.stdout


# 05, 06 ------------------------------------------------------------------------------------------


def test_pipes_and_devices_are_refused_never_read(good: Path) -> None:
    """A symlink to /dev/zero and a named pipe, listed on stdin (`find | apply -`) or named:
    refused in one line each, at once (was: read until memory ran out; blocked forever)."""
    folder = good.parent
    os.symlink("/dev/zero", folder / "zero.jpg")
    os.mkfifo(folder / "pipe.jpg")
    os.mkfifo(folder / "named.jpg")
    listed = b"zero.jpg\npipe.jpg\ngood.jpg\n"
    run = colorize(
        "apply", "-", "named.jpg", "--out-dir", "out", stdin=listed, cwd=folder, timeout=60
    )
    assert run.returncode == 1
    reason = "not a regular file (a named pipe, socket or device)"
    assert run.errors == [
        f"failed: {name}: {reason}" for name in ("zero.jpg", "pipe.jpg", "named.jpg")
    ]
    assert outputs(folder / "out") == ["good.jpg"]


def test_the_readers_open_only_regular_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    os.symlink("/dev/zero", tmp_path / "zero")
    for name in ("pipe", "zero"):
        with pytest.raises(fsutil.UnsafeFileError, match="not a regular file"):
            fsutil.read_regular_file(tmp_path / name, 10)
        with pytest.raises(images.ImageError, match="not a regular file"):
            images.read_image(tmp_path / name)
    (tmp_path / "big").write_bytes(bytes(11))
    with pytest.raises(fsutil.UnsafeFileError, match="11 bytes, over the limit of 10"):
        fsutil.read_regular_file(tmp_path / "big", 10)
    assert fsutil.read_regular_file(tmp_path / "big", 11) == bytes(11)


# 07 ----------------------------------------------------------------------------------------------


def test_model_files_that_are_pipes_or_devices_are_refused(good: Path) -> None:
    folder = good.parent
    os.symlink("/dev/zero", folder / "zero.tflite")
    os.mkfifo(folder / "pipe.tflite")
    os.mkfifo(folder / "pipe.keras")
    os.symlink("/dev/zero", folder / "zero.keras")
    reason = "not a regular file (a named pipe, socket or device)"
    for model in ("zero.tflite", "pipe.tflite"):
        run = colorize("apply", "good.jpg", "--model", model, cwd=folder, timeout=60)
        assert run.returncode == 2 and run.errors == [f"error: {model}: {reason}"]
    run = colorize("info", "pipe.keras", "zero.keras", "default", cwd=folder, timeout=60)
    assert run.returncode == 1
    assert run.errors == [
        f"error: {m}: cannot read: {reason}" for m in ("pipe.keras", "zero.keras")
    ]
    assert b"parameters" in run.stdout  # the bundled model is still described
    assert outputs(folder) == sorted(
        ["good.jpg", "pipe.keras", "pipe.tflite", "zero.keras", "zero.tflite"]
    )


# 08 ----------------------------------------------------------------------------------------------


def animated_webp_canvas(side: int) -> bytes:
    """A ~100-byte animated WebP of one 1x1 frame on a `side` x `side` canvas (the red team's)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return tag + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)

    def u24(value: int) -> bytes:
        return struct.pack("<I", value)[:3]

    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), (90, 90, 90)).save(buffer, "WEBP", lossless=True)
    still = buffer.getvalue()
    start = still.find(b"VP8L")
    length = struct.unpack("<I", still[start + 4 : start + 8])[0]
    frame = still[start : start + 8 + length + (length & 1)]
    body = b"WEBP" + chunk(b"VP8X", bytes([0x12, 0, 0, 0]) + u24(side - 1) + u24(side - 1))
    body += chunk(b"ANIM", b"\xff" * 4 + b"\0\0")
    body += chunk(b"ANMF", u24(0) * 4 + u24(100) + b"\0" + frame)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_a_webp_canvas_is_checked_before_its_decoder_allocates_it(good: Path) -> None:
    """A 100-byte WebP declaring a 196 MP canvas (under the 200 MP limit) took 11.6 GB and 96 s:
    Pillow's WebP decoder holds four canvases, so WebP gets a quarter of the limit."""
    folder = good.parent
    (folder / "canvas.webp").write_bytes(animated_webp_canvas(14000))
    started = time.monotonic()
    run = colorize("apply", "canvas.webp", "good.jpg", "--out-dir", "out", cwd=folder)
    assert time.monotonic() - started < 60
    assert run.returncode == 1
    assert run.errors == [
        "failed: canvas.webp: image is 14000x14000 = 196 megapixels, over the 50 megapixel "
        "limit for WebP, a quarter of the limit for other formats (--max-pixels)"
    ]
    assert outputs(folder / "out") == ["good.jpg"]


PEAK_SCRIPT = """
import resource, sys
from colorize_cli.imaging import images
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
pixels = images.read_image(sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(pixels.shape[0] * pixels.shape[1], after - before)
"""


@pytest.mark.parametrize("mode", ["RGBA", "I;16"])
def test_reading_takes_memory_bounded_by_the_pixel_count_whatever_the_mode(
    tmp_path: Path, mode: str
) -> None:
    """Alpha flattening made uint32 copies of the whole photo (16 bytes a pixel and more), 16-bit
    greys int64 ones; now the conversion runs tile by tile: beyond the decoded photo (4 bytes a
    pixel for RGBA, 2 for I;16) and the result (3), a few MB."""
    side = 3000
    values = np.arange(side * side, dtype=np.uint32).reshape(side, side)
    if mode == "RGBA":
        array = np.stack([values % 251, values % 241, values % 239, values % 256], -1)
        Image.fromarray(array.astype(np.uint8), "RGBA").save(
            tmp_path / "photo.png", compress_level=1
        )
    else:
        Image.fromarray((values % 65536).astype(np.uint16)).save(
            tmp_path / "photo.png", compress_level=1
        )
    result = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, tmp_path / "photo.png"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    pixels, grown_kb = map(int, result.stdout.split())
    decoded = 4 if mode == "RGBA" else 2
    assert pixels == side * side
    assert grown_kb * 1024 < pixels * (decoded + 3) + 48 * 2**20, grown_kb


def test_a_photo_that_runs_out_of_memory_fails_alone(tmp_path: Path) -> None:
    """A MemoryError while colorizing (the 199,000,000 x 1 strip) is that photo's failure: the
    photos of its batch are retried one by one, and the photos after it are done."""
    from colorize_cli.config import ApplyOptions
    from colorize_cli.inference import applying

    names = ["a.png", "strip.png", "c.png", "d.png"]
    for name in names:
        width = 400 if name == "strip.png" else 16
        Image.fromarray(gradient(width, 2 if name == "strip.png" else 12)).save(tmp_path / name)

    class Colorizer:
        takes_hints = False
        model_path = None

        def chroma_many(self, items):  # noqa: ANN001, ANN202 - batches of 3, like the real one
            batch = []
            for item in items:
                batch.append(item)
                if len(batch) == 3:
                    yield from self.run(batch)
                    batch = []
            yield from self.run(batch)

        def run(self, batch):  # noqa: ANN001, ANN202
            if any(gray.shape[1] == 400 for _, gray, *_ in batch):
                raise MemoryError
            for tag, gray, *_ in batch:
                yield tag, gray, np.zeros((*gray.shape, 2), np.float32)

    options = ApplyOptions(sources=[str(tmp_path / n) for n in names], out_dir=tmp_path / "out")
    outcomes = {Path(o.source).name: o for o in applying.apply(options, colorizer=Colorizer())}
    assert {name: o.status for name, o in outcomes.items()} == {
        "a.png": "written",
        "strip.png": "failed",
        "c.png": "written",
        "d.png": "written",
    }
    assert outcomes["strip.png"].reason == "not enough memory to colorize this photo"


# 09 ----------------------------------------------------------------------------------------------


def progressive_jpeg(scans: int, side: int = 16) -> bytes:
    """A grey progressive JPEG of `side` x `side` whose AC scan repeats `scans` times (the red
    team's generator, small)."""

    def segment(marker: int, payload: bytes) -> bytes:
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload

    blocks = (side // 8) ** 2
    data = b"\xff\xd8" + segment(0xDB, b"\0" + bytes([1] * 64))
    data += segment(0xC2, struct.pack(">BHHB", 8, side, side, 1) + b"\x01\x11\x00")
    data += segment(0xC4, b"\0" + bytes([1] + [0] * 15) + b"\0")
    data += segment(
        0xC4, b"\x10" + bytes([0, 0, 0, 15] + [0] * 12) + bytes(r << 4 for r in range(15))
    )
    bits = "0" * blocks
    dc = int((bits + "1" * (-len(bits) % 8)), 2).to_bytes((len(bits) + 7) // 8, "big")
    data += segment(0xDA, b"\x01\x01\x00\x00\x00\x00") + dc
    run = blocks
    r = run.bit_length() - 1
    ac_bits = format(r, "04b") + (format(run - (1 << r), f"0{r}b") if r else "")
    ac_bits += "1" * (-len(ac_bits) % 8)
    ac = int(ac_bits, 2).to_bytes(len(ac_bits) // 8, "big").replace(b"\xff", b"\xff\x00")
    data += (segment(0xDA, b"\x01\x01\x00\x01\x3f\x00") + ac) * scans
    return data + b"\xff\xd9"


def test_a_jpeg_of_thousands_of_scans_is_refused_before_decoding(good: Path) -> None:
    """Each scan costs a pass over the whole photo: 4,000 scans of a 903 KB file took 78 s."""
    folder = good.parent
    (folder / "scans.jpg").write_bytes(progressive_jpeg(4000))
    (folder / "few.jpg").write_bytes(progressive_jpeg(20))
    assert images.read_image(folder / "few.jpg").shape == (16, 16, 3)
    run = colorize("apply", "scans.jpg", "few.jpg", "good.jpg", "--out-dir", "out", cwd=folder)
    assert run.returncode == 1
    assert run.errors == [
        "failed: scans.jpg: JPEG of over 100 scans, refused before decoding (a decoding bomb: "
        "each scan costs a pass over the whole photo)"
    ]
    assert outputs(folder / "out") == ["few.jpg", "good.jpg"]


# 13 ----------------------------------------------------------------------------------------------

KERAS_CONFIG = {
    "module": "keras.src.models.functional",
    "class_name": "Functional",
    "config": {"name": "f", "layers": [], "input_layers": [], "output_layers": []},
}


def empty_hdf5() -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_dataset("kernel", data=np.zeros(3, np.float32))
    return buffer.getvalue()


def keras_zip(
    path: Path,
    metadata: bytes = b'{"keras_version": "3.15.1"}',
    config: bytes = json.dumps(KERAS_CONFIG).encode(),
    weights: bytes | None = None,
) -> Path:
    weights = empty_hdf5() if weights is None else weights
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", metadata)
        archive.writestr("config.json", config)
        archive.writestr("model.weights.h5", weights)
    return path


def declare_size(path: Path, member: str, size: int) -> None:
    """Make the central directory say `member` inflates to `size` bytes (a bomb's declaration)."""
    data = bytearray(path.read_bytes())
    position = data.find(b"PK\x01\x02")
    while data[position + 46 : position + 46 + len(member)] != member.encode():
        position = data.find(b"PK\x01\x02", position + 4)
    data[position + 24 : position + 28] = struct.pack("<I", size)  # uncompressed size
    path.write_bytes(bytes(data))


def test_info_names_each_malformed_keras_file_in_one_line(tmp_path: Path) -> None:
    keras_zip(tmp_path / "deep.keras", config=b'{"config": ' + b"[" * 100000 + b"]" * 100000 + b"}")
    keras_zip(tmp_path / "list.keras", config=b"[]")
    layer_text = dict(KERAS_CONFIG, config={**KERAS_CONFIG["config"], "layers": ["x"]})
    keras_zip(tmp_path / "layer.keras", config=json.dumps(layer_text).encode())
    keras_zip(tmp_path / "weights.keras", weights=b"not hdf5")
    keras_zip(tmp_path / "meta.keras", metadata=b'{"keras_version": "\xff"}')
    declare_size(keras_zip(tmp_path / "bomb.keras"), "model.weights.h5", 0xFFFFFFF0)
    names = ["deep", "list", "layer", "weights", "meta", "bomb"]
    started = time.monotonic()
    run = colorize("info", *(f"{n}.keras" for n in names), "default", cwd=tmp_path)
    assert time.monotonic() - started < 60
    assert run.returncode == 1
    assert [line.split(":")[1].strip() for line in run.errors] == [f"{n}.keras" for n in names]
    reasons = dict(zip(names, run.errors, strict=True))
    assert "nested too deeply" in reasons["deep"]
    assert "config.json is not a JSON object" in reasons["list"]
    assert "malformed Keras config" in reasons["layer"]
    assert "model.weights.h5 is not a readable HDF5 file" in reasons["weights"]
    assert "metadata.json is not valid JSON" in reasons["meta"]
    assert "would inflate to 4294967280 bytes, over the limit of 1073741824" in reasons["bomb"]
    assert b"parameters" in run.stdout


# 14 ----------------------------------------------------------------------------------------------


def write_shard(path: Path, count: int, size: int = 8) -> Path:
    rng = np.random.default_rng(count)
    with shard_writer.ShardWriter(path, size, "train") as writer:
        for i in range(count):
            rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            writer.append(color.grayscale(rgb), rgb, f"photo{i}.png", f"{i:064x}")
    return path


def forged_shard(path: Path, base: Path, datasets: dict[str, dict]) -> Path:
    with h5py.File(base, "r") as good, h5py.File(path, "w") as f:
        for key, value in good.attrs.items():
            f.attrs[key] = value
        for name, spec in datasets.items():
            if isinstance(spec, h5py.ExternalLink):
                f[name] = spec
            else:
                f.create_dataset(name, **spec)
    return path


def test_shards_that_read_other_files_or_declare_the_impossible_are_refused(tmp_path: Path) -> None:
    base = write_shard(tmp_path / "base.h5", 3)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 4)
    text = h5py.string_dtype("utf-8")
    sha = h5py.string_dtype("ascii", 64)
    names = {"source": {"data": np.array(["x"], dtype=object), "dtype": text}}
    names["sha256"] = {"data": np.array([b"a" * 64]), "dtype": sha}
    n = 10**9
    forged_shard(
        tmp_path / "billion.h5",
        base,
        {
            "gray": {"shape": (n, 8, 8), "dtype": "u1", "chunks": (1, 8, 8)},
            "rgb": {"shape": (n, 8, 8, 3), "dtype": "u1", "chunks": (1, 8, 8, 3)},
            "source": {"shape": (n,), "dtype": text, "chunks": (1024,)},
            "sha256": {"shape": (n,), "dtype": sha, "chunks": (1024,)},
        },
    )
    external = {"shape": (1, 8, 8), "dtype": "u1", "external": [(str(secret), 0, 64)]}
    forged_shard(
        tmp_path / "external.h5",
        base,
        {"gray": external, "rgb": {"data": np.zeros((1, 8, 8, 3), np.uint8)}, **names},
    )
    forged_shard(
        tmp_path / "link.h5", base, {k: h5py.ExternalLink("base.h5", k) for k in shards._DATASETS}
    )
    shutil.copy(base, tmp_path / "data[1].h5")
    run = colorize("info", "billion.h5", "external.h5", "link.h5", "data[1].h5", cwd=tmp_path)
    assert run.returncode == 1
    assert run.errors == [
        "error: billion.h5: declares 1000000000 images, more than its "
        f"{(tmp_path / 'billion.h5').stat().st_size} bytes can hold (a damaged or forged shard)",
        "error: external.h5: dataset 'gray' is stored in an external file: a shard's data stays "
        "in it",
        "error: link.h5: dataset 'gray' is an external link: a shard's data stays in it",
    ]
    assert b"data[1].h5" in run.stdout


# 15 ----------------------------------------------------------------------------------------------


def test_a_stream_that_cannot_be_read_exits_2(tmp_path: Path) -> None:
    """`apply - -o -`: its one input failing means nothing was done (was exit 1, "some failed")."""
    for data, reason in ((b"not an image", "not an image file"), (b"", "file is empty")):
        run = colorize("apply", "-", "-o", "-", "--format", "png", stdin=data, cwd=tmp_path)
        assert run.returncode == 2 and run.stdout == b""
        assert len(run.errors) == 1 and run.errors[0].startswith(f"error: -: {reason}")


# 16 ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_refused_training_run_leaves_nothing_behind(tmp_path: Path) -> None:
    """A refusal once the run had begun left run/config.json: --resume then found no checkpoint
    and the corrected command "already holds a run"."""
    write_shard(tmp_path / "d.h5", 4, size=32)
    write_shard(tmp_path / "d.val.h5", 2, size=32)
    args = ("--epochs", "1", "--steps-per-epoch", "1", "--model", "tiny", "--out", "run")
    run = colorize("train", "d.h5", *args, "--batch-size", "64", cwd=tmp_path, timeout=300)
    assert run.returncode == 2
    assert len(run.errors) == 1 and "batch size 64 is larger than the" in run.errors[0]
    assert not (tmp_path / "run").exists()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    args = (*args[:-1], "kept")
    run = colorize("train", "d.h5", *args, "--batch-size", "64", cwd=tmp_path, timeout=300)
    assert run.returncode == 2 and outputs(tmp_path / "kept") == ["notes.txt"]


# 17 ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_cleans_up_like_ctrl_c(tmp_path: Path) -> None:
    """SIGTERM (timeout, docker stop) during apply: exit 130 as documented, and no temporary
    file left (was: 143 and out/long.mp4.tmp-PID)."""
    import av

    with av.open(str(tmp_path / "long.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 160, 128, "yuv420p"
        base = np.random.default_rng(5).integers(0, 256, (128, 160, 3), dtype=np.uint8)
        for i in range(400):
            frame = av.VideoFrame.from_ndarray(np.roll(base, i, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    command = [sys.executable, "-m", "colorize_cli", "apply", "long.mp4", "--out-dir", "out"]
    child = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("out/long.mp4.tmp-*")) and time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    assert (
        "Traceback" not in stderr.decode()
        and stderr.decode().splitlines()[-1] == "error: interrupted"
    )
    assert outputs(tmp_path / "out") == []


# 18 ----------------------------------------------------------------------------------------------


def test_overwrite_replaces_only_regular_files(good: Path) -> None:
    """`-o NODE --overwrite` renamed a photo over a device node or a symlink (as root, over
    /dev/null). A named pipe and symbolic links stand in for them here."""
    folder = good.parent
    os.mkfifo(folder / "pipe.jpg")
    os.symlink("/proc/self/fd/1", folder / "stdout.jpg")
    (folder / "other.jpg").write_bytes(b"other")
    os.symlink("other.jpg", folder / "link.jpg")
    refusals = {
        "pipe.jpg": "not a regular file (a named pipe, socket or device): refusing to replace it",
        "stdout.jpg": "is a symbolic link, not a regular file: refusing to replace it",
        "link.jpg": "is a symbolic link, not a regular file: refusing to replace it",
    }
    for target, reason in refusals.items():
        run = colorize("apply", "good.jpg", "-o", target, "--overwrite", cwd=folder, timeout=60)
        assert run.returncode == 2 and run.errors == [f"failed: good.jpg: cannot write: {reason}"]
    assert stat.S_ISFIFO(os.lstat(folder / "pipe.jpg").st_mode)
    assert os.readlink(folder / "stdout.jpg") == "/proc/self/fd/1"
    assert (folder / "other.jpg").read_bytes() == b"other"
    (folder / "old.jpg").write_bytes(b"old")
    run = colorize("apply", "good.jpg", "-o", "old.jpg", "--overwrite", cwd=folder, timeout=60)
    assert run.returncode == 0 and images.read_image(folder / "old.jpg").shape == (48, 64, 3)


def test_atomic_writes_never_replace_a_device_or_a_link(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    os.symlink("elsewhere", tmp_path / "link")
    for name in ("pipe", "link"):
        with pytest.raises(fsutil.UnsafeFileError, match="refusing to replace it"):
            fsutil.write_bytes(tmp_path / name, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "pipe"]
