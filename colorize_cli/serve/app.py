"""`colorize serve`'s HTTP face: the Starlette routes of the page and of the API (docs/serve.md),
errors as JSON `{"error": "one line"}`, and the uvicorn server that runs them. The work itself is
photos.py's; the rules every request passes first are safety.py's.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from colorize_cli.config import ServeOptions
from colorize_cli.constants import SERVE_FORMATS
from colorize_cli.errors import ColorizeError, ImageError, one_line
from colorize_cli.imaging.hints import HintError
from colorize_cli.serve.photos import NotFound, Studio
from colorize_cli.serve.safety import BodyTooLarge, Safety, allowed_hosts

STATIC = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {
    b"\x89PNG": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"RIFF": "image/webp",
    b"II*\x00": "image/tiff",
    b"MM\x00*": "image/tiff",
    b"BM": "image/bmp",
}
# A multipart form holds a photo, a reference, the hints and the format: nothing more.
MAX_FORM_FILES = 2
MAX_FORM_FIELDS = 4


class ApiError(Exception):
    """An answer other than 200: `status` and the one line the client reads."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def error_status(exc: BaseException) -> int:
    """The HTTP status of a library error: 404 for an id not held, 413 for a photo over the pixel
    limit or a decoding bomb, 415 for a file that is no photo, else 400 (a bad photo or hints).

    The photo reader says which by its message only (one ImageError type); a typed subclass per
    case in imaging/headers.py and imaging/images.py would make this exact."""
    if isinstance(exc, NotFound):
        return 404
    image = exc if isinstance(exc, ImageError) else exc.__cause__
    if isinstance(image, ImageError):
        if "megapixel" in image.reason or "bomb" in image.reason:
            return 413
        if "not an image file" in image.reason:
            return 415
    return 400


def _message(exc: BaseException) -> str:
    if isinstance(exc, ColorizeError):
        return exc.reason if exc.path in (None, "-") else f"{exc.path}: {exc.reason}"
    if isinstance(exc, HintError):
        return f"hints: {exc}"
    return one_line(exc)


def _json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status)


def _file_name(upload: UploadFile) -> str:
    """An upload's own name reduced to a file name (shown, and the output's), never a path."""
    name = re.split(r"[/\\]", upload.filename or "")[-1]
    name = "".join(char for char in name if char.isprintable())[:200].strip(". ")
    return name or "photo"


def _content_type(data: bytes) -> str:
    return next((kind for magic, kind in CONTENT_TYPES.items() if data.startswith(magic)), "")


def _format(value: object) -> str | None:
    if value in (None, ""):
        return None
    if value not in SERVE_FORMATS:
        raise ApiError(400, f"format must be one of {', '.join(SERVE_FORMATS)}, got {value!r}")
    return str(value)


async def _form(request: Request) -> dict:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "send multipart/form-data (curl -F photo=@PHOTO)")
    try:
        form = await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
    except HTTPException as exc:
        raise ApiError(400, f"bad form: {exc.detail}") from None
    return dict(form)


async def _file(form: dict, field: str, required: bool = True) -> tuple[str, bytes] | None:
    upload = form.get(field)
    if upload is None and not required:
        return None
    if not isinstance(upload, UploadFile):
        raise ApiError(400, f'missing file field "{field}"')
    return _file_name(upload), await upload.read()


async def _text(form: dict, field: str) -> str | None:
    value = form.get(field)
    if isinstance(value, UploadFile):
        return (await value.read()).decode("utf-8", "replace")
    return value or None


def _photo_response(data: bytes, download_name: str | None = None) -> Response:
    headers = {"cache-control": "no-store"}
    if download_name is not None:
        quoted = download_name.replace('"', "")
        headers["content-disposition"] = f'attachment; filename="{quoted}"'
    return Response(
        data, media_type=_content_type(data) or "application/octet-stream", headers=headers
    )


def make_app(studio: Studio) -> Starlette:
    """The page and the API over `studio`, behind the safety rules."""
    from starlette.concurrency import run_in_threadpool

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    async def health(request: Request) -> Response:
        return JSONResponse(studio.health())

    async def colorize(request: Request) -> Response:
        form = await _form(request)
        name, data = await _file(form, "photo")  # type: ignore[misc]
        reference = await _file(form, "reference", required=False)
        hints_text = await _text(form, "hints")
        encoded = await run_in_threadpool(
            studio.colorize_upload,
            name,
            data,
            hints_text,
            None if reference is None else reference[1],
            _format(form.get("format")),
        )
        return _photo_response(encoded)

    async def list_photos(request: Request) -> Response:
        return JSONResponse({"photos": [entry.describe() for entry in studio.entries()]})

    async def add_photo(request: Request) -> Response:
        form = await _form(request)
        name, data = await _file(form, "photo")  # type: ignore[misc]
        entry = await run_in_threadpool(studio.add_upload, name, data)
        return JSONResponse(entry.describe())

    async def photo(request: Request) -> Response:
        entry = await run_in_threadpool(studio.photo, request.path_params["id"])
        return JSONResponse(entry.describe())

    async def gray(request: Request) -> Response:
        data = await run_in_threadpool(studio.gray_preview, request.path_params["id"])
        return Response(data, media_type="image/jpeg", headers={"cache-control": "private"})

    async def preview(request: Request) -> Response:
        body = await request.body()
        data = await run_in_threadpool(studio.preview, request.path_params["id"], body)
        return _photo_response(data)

    async def download(request: Request) -> Response:
        body = await request.body()
        try:
            format = _format(json.loads(body).get("format"))
        except (ValueError, AttributeError):
            format = None  # the hints' own check below says what is wrong with the body
        name, data = await run_in_threadpool(
            studio.download, request.path_params["id"], body or b'{"points": []}', format
        )
        return _photo_response(data, name)

    async def add_reference(request: Request) -> Response:
        form = await _form(request)
        name, data = await _file(form, "reference")  # type: ignore[misc]
        reference_id, colors = await run_in_threadpool(studio.add_reference, name, data)
        return JSONResponse({"id": reference_id, "name": name, "colors": colors})

    async def zip_all(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            items = [
                (str(item["id"]), json.dumps({**item, "reference": body.get("reference")}))
                for item in body["photos"]
            ]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ApiError(400, 'expected {"photos": [{"id": ID, "points": [...]}, ...]}') from None
        data = await run_in_threadpool(studio.zip, items, _format(body.get("format")))
        return Response(
            data,
            media_type="application/zip",
            headers={"content-disposition": 'attachment; filename="colorized.zip"'},
        )

    async def api_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ApiError):
            return _json_error(exc.status, exc.message)
        if isinstance(exc, BodyTooLarge):
            return _json_error(413, str(exc))
        if isinstance(exc, HTTPException):
            return _json_error(exc.status_code, str(exc.detail))
        if isinstance(exc, ColorizeError | HintError):
            return _json_error(error_status(exc), _message(exc))
        if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
            return _json_error(400, f"not JSON: {one_line(exc)}")
        if isinstance(exc, MemoryError):
            return _json_error(503, "not enough memory for this photo")
        return _json_error(500, f"internal error: {one_line(exc)}")

    photo_routes = [
        Route("/api/photos", list_photos, methods=["GET"]),
        Route("/api/photos", add_photo, methods=["POST"]),
        Route("/api/photos/{id:str}", photo, methods=["GET"]),
        Route("/api/photos/{id:str}/gray", gray, methods=["GET"]),
        Route("/api/photos/{id:str}/preview", preview, methods=["POST"]),
        Route("/api/photos/{id:str}/download", download, methods=["POST"]),
    ]
    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/api/health", health, methods=["GET"]),
            Route("/api/colorize", colorize, methods=["POST"]),
            *photo_routes,
            Route("/api/references", add_reference, methods=["POST"]),
            Route("/api/zip", zip_all, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        # Expected errors are answered by the routes' layer; only an unexpected one reaches
        # `Exception`'s handler, which answers too but leaves its traceback in the log.
        exception_handlers={
            kind: api_error
            for kind in (
                ApiError,
                BodyTooLarge,
                HTTPException,
                ColorizeError,
                HintError,
                json.JSONDecodeError,
                UnicodeDecodeError,
                MemoryError,
                Exception,
            )
        },
    )
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 takes a free one. OSError if it cannot."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(options: ServeOptions, studio: Studio, ready: Callable[[str], None]) -> None:
    """Run the page until Ctrl-C; `ready(url)` is called once it listens."""
    import uvicorn

    sock = bind(options.host, options.port)
    app = Safety(make_app(studio), allowed_hosts(options.host), options.max_upload_bytes)
    config = uvicorn.Config(app, log_level="info", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    ready(url_of(sock, options.host))
    server.run(sockets=[sock])
