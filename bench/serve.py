"""`colorize serve`'s hint-to-preview latency: a real server, a 2 MP photo uploaded once, then a
preview asked for after each hint change, as the page does (one request at a time); the full-
resolution download for comparison. Prints a Markdown table for docs/serve.md and benchmarks.md.

    .venv/bin/python bench/serve.py                          # the bundled model, render size 160
    .venv/bin/python bench/serve.py --model run/model.keras --repeats 30 PHOTO.jpg

The load average is printed with the figures: they mean little without it on a shared machine.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dev"
SIZE = (1732, 1155)  # 2.0 MP


def photo_bytes(path: Path | None) -> bytes:
    """A photo at SIZE (a dev photo scaled up, unless one is given), as JPEG."""
    path = path or sorted(DEV.glob("*.jpg"))[0]
    with Image.open(path) as im:
        im = im.convert("RGB").resize(SIZE, Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        im.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def request(url: str, method: str, path: str, body: bytes, content_type: str) -> bytes:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    connection.request(method, path, body, {"content-type": content_type})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    if response.status != 200:
        sys.exit(f"{path}: HTTP {response.status}: {data[:200]!r}")
    return data


def upload(url: str, data: bytes) -> dict:
    boundary = secrets.token_hex(8)
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return json.loads(
        request(url, "POST", "/api/photos", body, f"multipart/form-data; boundary={boundary}")
    )


def timed(url: str, path: str, points: list[dict], repeats: int) -> list[float]:
    seconds = []
    for k in range(repeats):
        moved = [dict(p, x=p["x"] + k % 7) for p in points]  # a drag: the hints move a little
        body = json.dumps({"points": moved}).encode()
        started = time.perf_counter()
        request(url, "POST", path, body, "application/json")
        seconds.append(time.perf_counter() - started)
    return seconds


def measure(command: list[str], log, args: argparse.Namespace):
    """Start the server, upload, time the previews and downloads, stop it."""
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        url = server.stdout.readline().strip()  # type: ignore[union-attr]
        if not url.startswith("http"):
            log.seek(0)
            sys.exit(f"the server did not start: {log.read().decode()[-1000:]}")
        health = json.loads(request(url, "GET", "/api/health", b"", "text/plain"))
        info = upload(url, photo_bytes(args.photo))
        base = f"/api/photos/{info['id']}"
        hinted = health["takes_hints"]
        points = [
            {"x": info["width"] * (i + 1) // 6, "y": info["height"] // 2, "color": "#d23c2a"}
            for i in range(5 if hinted else 0)
        ]
        timed(url, f"{base}/preview", points, 2)  # warm-up: first allocation of each shape
        load = os.getloadavg()[0]
        preview = timed(url, f"{base}/preview", points, args.repeats)
        download = timed(url, f"{base}/download", points, max(3, args.repeats // 5))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    return health, info, points, load, preview, download


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", nargs="?", type=Path, help="default: a dev photo at 2 MP")
    parser.add_argument("--model", help="default: the bundled model")
    parser.add_argument("--render-size", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    command = [sys.executable, "-m", "colorize_cli", "serve", "--port", "0"]
    command += ["--render-size", str(args.render_size)]
    command += ["--model", args.model] if args.model else []
    with tempfile.TemporaryFile() as log:
        health, info, points, load, preview, download = measure(command, log, args)

    def cells(values: list[float]) -> str:
        values = sorted(values)
        p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
        return f"{1000 * statistics.median(values):.0f} ms | {1000 * p90:.0f} ms"

    model = Path(health["model"]).name
    what = (
        f"{len(points)} hints, moved each time"
        if health["takes_hints"]
        else "no hints (the model takes none)"
    )
    print(
        f"`colorize serve`, {model} on {health['backend']}, render size {health['render_size']}, "
        f"a {info['width']}x{info['height']} photo ({info['width'] * info['height'] / 1e6:.1f} "
        f"MP), preview {info['preview_width']}x{info['preview_height']}, {what}; "
        f"{os.cpu_count()} cores, load average {load:.1f} while measuring.\n"
    )
    print("| request | median | p90 | runs |")
    print("|---|---|---|---|")
    print(
        f"| hint change -> preview (`POST /api/photos/ID/preview`) | "
        f"{cells(preview)} | {len(preview)} |"
    )
    print(f"| full-resolution download (`.../download`) | {cells(download)} | {len(download)} |")


if __name__ == "__main__":
    main()
