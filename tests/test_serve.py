"""`colorize serve` through its HTTP API, against a real server on a free port (docs/serve.md):
the answers, the errors, the safety rules, concurrency; and the photo store's memory bound."""

from __future__ import annotations

import http.client
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import DEV_DIR, dev_photos
from PIL import Image

RENDER_SIZE = 64
MAX_PIXELS = 4_000_000
MAX_UPLOAD_MB = 2


@dataclass
class Server:
    """A running `colorize serve`: its URL and process."""

    url: str
    process: subprocess.Popen
    log: Path

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            connection.close()

    def post_form(
        self, path: str, fields: dict[str, bytes | str], headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        body, content_type = multipart(fields)
        return self.request("POST", path, body, {"content-type": content_type, **(headers or {})})

    def post_json(self, path: str, document: object) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps(document).encode()
        return self.request("POST", path, body, {"content-type": "application/json"})


def multipart(fields: dict[str, bytes | str]) -> tuple[bytes, str]:
    """A multipart/form-data body: bytes values are files (named after their field), str text."""
    boundary = secrets.token_hex(12)
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(value, bytes):
            out.write(
                f'Content-Disposition: form-data; name="{name}"; filename="{name}.jpg"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n".encode()
            )
            out.write(value)
        else:
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode())
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def start_server(log: Path, *args: str) -> Server:
    """`colorize serve --port 0 ARGS` started, its URL read from stdout (the first line)."""
    command = [sys.executable, "-m", "colorize_cli", "serve", "--port", "0", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log.open("wb"), text=True, start_new_session=True
    )
    line = process.stdout.readline().strip()  # type: ignore[union-attr]
    if not line.startswith("http://"):
        process.kill()
        pytest.fail(f"colorize serve did not start: {line!r} {log.read_text()[-2000:]}")
    return Server(line, process, log)


def stop_server(server: Server) -> None:
    server.process.send_signal(signal.SIGINT)
    try:
        assert server.process.wait(timeout=20) == 0, server.log.read_text()[-2000:]
    finally:
        if server.process.poll() is None:
            server.process.kill()
    assert "Traceback" not in server.log.read_text()


def small_jpeg(path: Path, width: int = 120) -> bytes:
    """A dev photo scaled to `width` px wide, as JPEG bytes."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        im = im.resize((width, max(8, round(im.height * width / im.width))))
        buffer = io.BytesIO()
        im.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo_bytes() -> bytes:
    return small_jpeg(dev_photos(1)[0])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("serve")
    named = folder / "named.jpg"
    named.write_bytes(small_jpeg(dev_photos(2)[1]))
    running = start_server(
        folder / "serve.log",
        "--render-size",
        str(RENDER_SIZE),
        "--max-pixels",
        str(MAX_PIXELS),
        "--max-upload-mb",
        str(MAX_UPLOAD_MB),
        str(named),
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def colorizer():
    from colorize_cli.inference.colorizer import Colorizer

    return Colorizer(render_size=RENDER_SIZE, batch_size=1)


def expected(data: bytes, colorizer, format: str | None = None, name: str = "photo.jpg") -> bytes:
    """What `colorize apply - -o -` gives for `data` (apply's own function, in this process)."""
    from colorize_cli.inference.applying import colorize_bytes

    return colorize_bytes(data, colorizer, format, name=name, max_pixels=MAX_PIXELS)


def error_of(status: int, headers: dict[str, str], body: bytes) -> str:
    assert headers["content-type"] == "application/json", (status, body[:200])
    document = json.loads(body)
    assert set(document) == {"error"}
    assert "\n" not in document["error"] and "Traceback" not in document["error"]
    return document["error"]


def test_health_names_the_model_and_render_size(server: Server) -> None:
    status, headers, body = server.request("GET", "/api/health")
    assert status == 200
    health = json.loads(body)
    assert health["render_size"] == RENDER_SIZE
    assert health["model"].endswith("default.tflite")
    assert isinstance(health["takes_hints"], bool)
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_colorize_answers_what_apply_gives(server: Server, photo_bytes: bytes, colorizer) -> None:
    status, headers, body = server.post_form("/api/colorize", {"photo": photo_bytes})
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert body == expected(photo_bytes, colorizer)
    status, headers, body = server.post_form(
        "/api/colorize", {"photo": photo_bytes, "format": "png"}
    )
    assert status == 200 and headers["content-type"] == "image/png"
    assert body == expected(photo_bytes, colorizer, "png")


def _bad_jpeg(photo_bytes: bytes) -> bytes:
    return photo_bytes[:200] + b"\x00" * 50


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"photo": b"this is text, not a photo"}, 415, "not an image file"),
        ({"photo": "BAD"}, 400, "corrupt"),  # filled in below
        ({"photo": "PHOTO", "hints": '{"points": [{"x": 1}]}'}, 400, "hints"),
        ({"photo": "PHOTO", "hints": "not json"}, 400, "not JSON"),
        ({"photo": "PHOTO", "format": "gif"}, 400, "format must be one of png, jpg"),
        ({"hints": '{"points": []}'}, 400, 'missing file field "photo"'),
        ({"photo": "PHOTO", "reference": b"no photo"}, 415, "reference"),
    ],
    ids=["not-a-photo", "corrupt", "bad-hints", "hints-not-json", "format", "no-photo", "ref"],
)
def test_errors_are_one_line_json_with_their_status(
    server: Server, photo_bytes: bytes, fields: dict, status: int, words: str
) -> None:
    given = {"PHOTO": photo_bytes, "BAD": _bad_jpeg(photo_bytes)}
    fields = {k: given.get(v, v) if isinstance(v, str) else v for k, v in fields.items()}
    answer = server.post_form("/api/colorize", fields)
    assert answer[0] == status, answer
    assert words in error_of(*answer)


def test_a_request_that_is_not_a_form_is_415_and_a_large_one_413(server: Server) -> None:
    answer = server.request("POST", "/api/colorize", b"{}", {"content-type": "application/json"})
    assert answer[0] == 415 and "multipart/form-data" in error_of(*answer)
    big = os.urandom((MAX_UPLOAD_MB << 20) + 1)
    answer = server.post_form("/api/colorize", {"photo": big})
    assert answer[0] == 413 and "larger than" in error_of(*answer)
    body, content_type = multipart({"photo": big})  # chunked: no length to refuse up front
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    chunks = (body[i : i + (1 << 16)] for i in range(0, len(body), 1 << 16))
    connection.request(
        "POST", "/api/colorize", chunks, {"content-type": content_type}, encode_chunked=True
    )
    response = connection.getresponse()
    answer = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    connection.close()
    assert answer[0] == 413 and "larger than" in error_of(*answer)


def test_a_decompression_bomb_is_refused_before_decoding(server: Server) -> None:
    buffer = io.BytesIO()
    Image.new("L", (2500, 2500)).save(buffer, "PNG")  # 6.25 MP of zeros in a few kB
    assert len(buffer.getvalue()) < 50_000
    answer = server.post_form("/api/colorize", {"photo": buffer.getvalue()})
    assert answer[0] == 413 and "megapixel" in error_of(*answer)


def test_a_host_header_attack_is_refused(server: Server) -> None:
    port = urlsplit(server.url).port
    for host in ("attacker.example", f"attacker.example:{port}", "127.0.0.1.nip.io"):
        answer = server.request("GET", "/api/health", headers={"host": host})
        assert answer[0] == 403 and "refused" in error_of(*answer)
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert server.request("GET", "/api/health", headers={"host": host})[0] == 200


def test_a_cross_origin_post_is_refused_and_scripts_need_no_token(
    server: Server, photo_bytes: bytes
) -> None:
    for origin in ("http://attacker.example", "null", f"http://localhost:1{server.host[-4:]}"):
        answer = server.post_form("/api/colorize", {"photo": photo_bytes}, {"origin": origin})
        assert answer[0] == 403 and "refused" in error_of(*answer)
    answer = server.post_form(
        "/api/colorize", {"photo": photo_bytes}, {"sec-fetch-site": "cross-site"}
    )
    assert answer[0] == 403
    same = {"origin": f"http://{server.host}", "sec-fetch-site": "same-origin"}
    assert server.post_form("/api/colorize", {"photo": photo_bytes}, same)[0] == 200
    assert server.post_form("/api/colorize", {"photo": photo_bytes})[0] == 200  # curl


def test_twenty_concurrent_requests_each_get_their_own_photo(server: Server, colorizer) -> None:
    photos = [small_jpeg(path, 64 + 4 * i) for i, path in enumerate(dev_photos(20, stride=31))]
    answers: list[bytes | None] = [None] * len(photos)

    def ask(index: int) -> None:
        status, _, body = server.post_form("/api/colorize", {"photo": photos[index]})
        answers[index] = body if status == 200 else None

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(photos))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for photo, answer in zip(photos, answers, strict=True):
        assert answer == expected(photo, colorizer)


def test_the_page_api_uploads_previews_downloads_and_zips(
    server: Server, photo_bytes: bytes, colorizer
) -> None:
    status, _, body = server.post_form("/api/photos", {"photo": photo_bytes})
    assert status == 200
    info = json.loads(body)
    assert info["name"] == "photo.jpg" and info["width"] == 120
    assert info["preview_width"] == 120  # smaller than the preview side: itself
    photo_id = info["id"]
    status, headers, body = server.post_json(f"/api/photos/{photo_id}/preview", {"points": []})
    assert status == 200 and headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(body)) as preview:
        assert preview.size == (info["preview_width"], info["preview_height"])
    status, headers, body = server.post_json(f"/api/photos/{photo_id}/download", {"points": []})
    assert status == 200 and body == expected(photo_bytes, colorizer)
    assert headers["content-disposition"] == 'attachment; filename="photo.color.jpg"'
    status, _, body = server.post_json(
        "/api/zip", {"photos": [{"id": photo_id, "points": []}], "format": "png"}
    )
    assert status == 200
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.namelist() == ["photo.color.png"]
        assert archive.read("photo.color.png") == expected(photo_bytes, colorizer, "png")


def test_a_reference_gives_its_main_colours_and_a_bad_body_is_400(
    server: Server, photo_bytes: bytes
) -> None:
    status, _, body = server.post_form("/api/references", {"reference": photo_bytes})
    assert status == 200
    reference = json.loads(body)
    assert 1 <= len(reference["colors"]) <= 6
    assert all(len(c) == 7 and c.startswith("#") for c in reference["colors"])
    photo_id = json.loads(server.post_form("/api/photos", {"photo": photo_bytes})[2])["id"]
    for body in (b"[1, 2]", b'{"points": "no"}', b"not json"):
        answer = server.request("POST", f"/api/photos/{photo_id}/download", body)
        assert answer[0] == 400 and error_of(*answer).startswith("hints: ")
    answer = server.post_json("/api/zip", {"photos": "no"})
    assert answer[0] == 400 and error_of(*answer)


def test_command_line_photos_are_listed_by_opaque_id_only(server: Server) -> None:
    status, _, body = server.request("GET", "/api/photos")
    listed = json.loads(body)["photos"]
    named = next(p for p in listed if p["name"] == "named.jpg")
    assert set(named) <= {
        "id",
        "name",
        "width",
        "height",
        "preview_width",
        "preview_height",
        "default_size",
        "error",
    }
    assert "/" not in body.decode()  # no path of this machine
    status, _, body = server.request("GET", f"/api/photos/{named['id']}/gray")
    assert status == 200 and body[:3] == b"\xff\xd8\xff"
    for path in ("/api/photos/..%2Fetc%2Fpasswd", "/api/photos/0123456789abcdef/gray"):
        answer = server.request("GET", path)
        assert answer[0] == 404 and error_of(*answer)
    assert server.request("GET", "/static/../app.py")[0] == 404


def test_hints_for_a_model_without_hints_or_outside_the_photo_are_400(
    server: Server, photo_bytes: bytes
) -> None:
    hints = json.dumps({"points": [{"x": 5000, "y": 5, "color": "#d23c2a"}]})
    answer = server.post_form("/api/colorize", {"photo": photo_bytes, "hints": hints})
    assert answer[0] == 400
    message = error_of(*answer)
    assert "outside the photo" in message or "takes no hints" in message


def test_the_store_drops_the_least_recently_used_photos_past_its_memory(colorizer) -> None:
    from colorize_cli.config import ServeOptions
    from colorize_cli.serve.photos import NotFound, Studio

    photo = small_jpeg(dev_photos(1)[0], 200)
    one = 200 * 133 * 2 + len(photo)  # gray + preview + the encoded bytes, about
    studio = Studio(ServeOptions(memory_bytes=int(2.5 * one), render_size=RENDER_SIZE), colorizer)
    first, second = studio.add_upload("a.jpg", photo), studio.add_upload("b.jpg", photo)
    studio.photo(first.id)  # the first is now the most recently used
    third = studio.add_upload("c.jpg", photo)
    with pytest.raises(NotFound):
        studio.photo(second.id)
    assert [e.name for e in studio.entries()] == ["a.jpg", "c.jpg"]
    named = DEV_DIR / dev_photos(1)[0].name
    (listed,) = studio.add_paths([named])
    for entry in (first, third, listed):
        studio.photo(entry.id)  # a command-line photo is read again, an upload stays held
    assert studio.photo(listed.id).loaded is not None


def test_serve_options_check_themselves() -> None:
    from colorize_cli.config import ServeOptions
    from colorize_cli.errors import UsageError

    with pytest.raises(UsageError, match="--port"):
        ServeOptions(port=70000)
    with pytest.raises(UsageError, match="--render-size"):
        ServeOptions(render_size=0)
    assert ServeOptions().local and not ServeOptions(host="0.0.0.0").local


def test_cli_errors_are_one_line_and_help_loads_no_server() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "colorize_cli", "serve", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "--port must be between 0 and 65535" in result.stderr
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom colorize_cli.cli import app\nprint(' '.join(sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    assert not {"starlette", "uvicorn", "multipart", "tensorflow"} & set(loaded)


def test_a_busy_port_is_a_one_line_error(server: Server) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "colorize_cli", "serve", "--port", str(urlsplit(server.url).port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "cannot listen on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 30
