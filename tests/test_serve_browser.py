"""`colorize serve`'s page in a real browser: headless Chromium from the system (Debian's
`chromium`), driven by Playwright, never a downloaded browser. Without it these tests skip.

COLORIZE_SERVE_SCREENSHOT=docs/serve-screenshot.png also saves the page, hint placed, for the docs;
COLORIZE_SERVE_MODEL=M runs the page (and apply, to compare) on model M instead of the bundled one.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import dev_photos
from PIL import Image
from test_serve import RENDER_SIZE, Server, small_jpeg, start_server, stop_server

BROWSERS = ("chromium", "chromium-browser")
MODEL = (
    ["--model", os.environ["COLORIZE_SERVE_MODEL"]] if "COLORIZE_SERVE_MODEL" in os.environ else []
)
RED = "#d21e1e"


def _browser_path() -> str:
    found = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if found is None:
        pytest.skip(
            "no headless browser: install the Debian package `chromium` (apt-get install chromium)"
        )
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    path = _browser_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("page")
    named, dropped = dev_photos(2, stride=211)
    out = {"named": folder / "named.jpg", "dropped": folder / dropped.name}
    out["named"].write_bytes(small_jpeg(named, 480))
    out["dropped"].write_bytes(small_jpeg(dropped, 320))
    # A wall of even mid gray with a little texture: no colour the network would guess.
    rng = np.random.default_rng(1)
    wall = np.clip(128 + rng.normal(0, 3, (240, 320)), 0, 255).astype(np.uint8)
    out["wall"] = folder / "wall.png"
    Image.fromarray(wall).save(out["wall"])
    out["bad"] = folder / "bad.jpg"
    out["bad"].write_bytes(b"this is not a photo\n" * 20)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path]) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("page-log") / "serve.log"
    running = start_server(log, "--render-size", str(RENDER_SIZE), *MODEL, str(photos["named"]))
    yield running
    stop_server(running)


@pytest.fixture
def page(browser, server: Server) -> Iterator[object]:
    """A fresh page of the server; the test fails if the page logs an error it did not expect."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 700})
    page = context.new_page()
    page.problems = []  # console errors and uncaught exceptions
    page.expected = ()  # substrings of console errors a test expects
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(f"uncaught: {e}"))
    page.goto(server.url)
    yield page
    unexpected = [p for p in page.problems if not any(e in p for e in page.expected)]
    context.close()
    assert not unexpected, f"the page logged errors: {unexpected}"


def takes_hints(server: Server) -> bool:
    return json.loads(server.request("GET", "/api/health")[2])["takes_hints"]


def drop(page, path: Path, target: str = "#drop") -> None:
    """Drop a file on the page as a person would drag it from a file manager."""
    page.evaluate(
        """([target, name, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
            const zone = document.querySelector(target);
            for (const kind of ["dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true }));
            }
        }""",
        [target, path.name, base64.b64encode(path.read_bytes()).decode()],
    )


def wait_until(page, condition: str, timeout: float = 30.0) -> None:
    """Poll a JavaScript function until it returns true (wait_for_function evaluates strings,
    which the page's Content-Security-Policy forbids, and rightly so)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(condition):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {condition}")
        time.sleep(0.05)


def wait_for_preview(page, points: int) -> None:
    page.wait_for_selector(f"#color[data-points='{points}']", timeout=30_000)
    wait_until(
        page,
        "() => document.body.dataset.busy === '0' && document.getElementById('color').complete",
    )


def choose(page, name: str) -> None:
    page.locator(f"#photos li[data-name='{name}']").click()
    page.wait_for_selector(f"#photos li.current[data-name='{name}']")


def pixel(page, x: float, y: float) -> tuple[int, int, int]:
    """The colorized preview's colour at (x, y), fractions of its width and height."""
    return tuple(
        page.evaluate(
            """([x, y]) => {
                const image = document.getElementById("color");
                const canvas = document.createElement("canvas");
                canvas.width = image.naturalWidth;
                canvas.height = image.naturalHeight;
                const context = canvas.getContext("2d");
                context.drawImage(image, 0, 0);
                const px = Math.floor(x * canvas.width), py = Math.floor(y * canvas.height);
                return Array.from(context.getImageData(px, py, 1, 1).data.slice(0, 3));
            }""",
            [x, y],
        )
    )


def place_hint(page, x: float, y: float, color: str, size: int) -> None:
    """Click at (x, y) (fractions of the photo), then give the new hint `color` and `size`."""
    box = page.locator("#marks").bounding_box()
    page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])
    page.wait_for_selector("#hint-tools:not([hidden])")
    page.locator("#hint-color").fill(color)
    page.locator("#hint-size").fill(str(size))


def test_command_line_photos_show_and_a_dropped_photo_is_colorized(
    page, photos: dict[str, Path]
) -> None:
    page.wait_for_selector("#photos li.current[data-name='named.jpg']")
    wait_for_preview(page, 0)
    drop(page, photos["dropped"])
    page.wait_for_selector(f"#photos li[data-name='{photos['dropped'].name}']")
    choose(page, photos["dropped"].name)
    wait_until(page, "() => document.getElementById('color').naturalWidth === 320")
    wait_for_preview(page, 0)
    assert page.evaluate("() => document.getElementById('gray').naturalWidth") == 320
    page.locator("#slider").fill("20")  # the before/after slider moves the split
    assert "20%" in page.evaluate("document.getElementById('color').style.clipPath")


def test_a_red_hint_on_a_neutral_region_turns_it_red(
    page, server: Server, photos: dict[str, Path]
) -> None:
    if not takes_hints(server):
        pytest.skip("the bundled model takes no hints yet (issue 18): nothing to turn red")
    page.wait_for_selector("#photos li.current[data-name='named.jpg']")  # the list is in
    drop(page, photos["wall"])
    choose(page, "wall.png")
    wait_for_preview(page, 0)
    before = pixel(page, 0.25, 0.5)
    place_hint(page, 0.25, 0.5, RED, 40)
    wait_for_preview(page, 1)
    page.wait_for_timeout(300)  # the colour and size inputs' previews, coalesced
    wait_for_preview(page, 1)
    red, green, blue = pixel(page, 0.25, 0.5)
    assert red > green + 30 and red > blue + 30, (before, (red, green, blue))
    right = pixel(page, 0.9, 0.5)
    assert abs(right[0] - right[1]) < abs(red - green)  # far away, less red


def test_the_download_equals_colorize_apply_with_the_saved_hints(
    page, server: Server, photos: dict[str, Path], tmp_path: Path
) -> None:
    hinted = takes_hints(server)
    choose(page, "named.jpg")
    wait_for_preview(page, 0)
    if hinted:
        place_hint(page, 0.5, 0.5, RED, 12)
        wait_for_preview(page, 1)
        page.wait_for_timeout(300)  # the colour and size inputs' previews, coalesced
        wait_for_preview(page, 1)
    shot = os.environ.get("COLORIZE_SERVE_SCREENSHOT")
    if shot:
        page.locator("#slider").fill("40")
        page.screenshot(path=shot, clip={"x": 0, "y": 0, "width": 1000, "height": 560})
    with page.expect_download() as saving:
        page.locator("#save-hints").click()
    saved = tmp_path / "named.json"
    saving.value.save_as(saved)
    assert len(json.loads(saved.read_text())["points"]) == int(hinted)
    with page.expect_download() as downloading:
        page.locator("#download").click()
    assert downloading.value.suggested_filename == "named.color.jpg"
    downloaded = tmp_path / "page.jpg"
    downloading.value.save_as(downloaded)
    out = tmp_path / "apply.jpg"
    command = [sys.executable, "-m", "colorize_cli", "apply", str(photos["named"]), "-o", str(out)]
    command += ["--render-size", str(RENDER_SIZE), *MODEL]
    command += ["--hints", str(saved)] if hinted else []
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    assert downloaded.read_bytes() == out.read_bytes()


def test_a_bad_file_shows_a_message_and_the_others_still_work(
    page, photos: dict[str, Path]
) -> None:
    page.expected = ("status of 415",)  # the browser logs the refused upload's status
    page.wait_for_selector("#photos li.current[data-name='named.jpg']")
    page.locator("#pick").set_input_files(str(photos["bad"]))
    page.wait_for_selector("#photos li.bad[data-name='bad.jpg']")
    message = page.locator("#message")
    assert message.is_visible()
    assert "bad.jpg: " in message.inner_text() and "not an image file" in message.inner_text()
    assert "not an image file" in page.locator("#photos li.bad .why").inner_text()
    choose(page, "named.jpg")  # the other photos are unaffected
    wait_for_preview(page, 0)
    assert not message.is_visible()


def test_the_page_loads_everything_from_the_server_and_logs_no_errors(page, server: Server) -> None:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.reload()
    page.wait_for_selector("#photos li.current")
    wait_for_preview(page, 0)
    assert requested and all(
        url.startswith(server.url) or url.startswith(("blob:", "data:")) for url in requested
    )
    assert page.problems == []


def test_a_photo_dropped_before_the_first_listing_arrives_is_listed_once(
    page, photos: dict[str, Path], tmp_path: Path
) -> None:
    """The page's first listing of the server's photos is held back until a dropped photo's
    upload is done, so the listing already holds it: the page lists it once, and not as failed."""
    late = tmp_path / "late.png"
    late.write_bytes(photos["wall"].read_bytes())
    held, holding = [], [True]

    def hold_listing(route) -> None:  # noqa: ANN001 - Playwright's Route
        if route.request.method == "GET" and holding[0]:
            held.append(route)  # the page before the reload may have asked too: all are held
        else:
            route.continue_()

    page.route("**/api/photos", hold_listing)
    page.reload()
    deadline = time.monotonic() + 30
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held, "the page never asked for its listing"
    drop(page, late)
    page.wait_for_selector("#photos li[data-name='late.png']")
    wait_until(page, "() => document.body.dataset.busy === '0'")
    page.wait_for_timeout(300)  # the upload's answer
    holding[0] = False
    for route in held:
        route.continue_()
    page.wait_for_selector("#photos li[data-name='named.jpg']")
    page.wait_for_timeout(300)
    assert page.locator("#photos li[data-name='late.png']").count() == 1
    assert page.locator("#photos li.bad").count() == 0


def test_a_photo_chosen_while_it_uploads_is_shown_once_it_is_read(
    page, photos: dict[str, Path], tmp_path: Path
) -> None:
    """Clicking a dropped photo before its upload is answered chooses it at once (a person does not
    wait for "reading..." to go), and its preview comes when the server has it."""
    slow = tmp_path / "slow.png"
    slow.write_bytes(photos["wall"].read_bytes())
    held: list[object] = []

    def hold_upload(route) -> None:  # noqa: ANN001 - Playwright's Route
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.wait_for_selector("#photos li.current[data-name='named.jpg']")
    wait_for_preview(page, 0)
    page.route("**/api/photos", hold_upload)
    drop(page, slow)
    page.locator("#photos li[data-name='slow.png']").click()
    page.wait_for_selector("#photos li.current[data-name='slow.png']", timeout=5_000)
    assert "reading" in page.locator("#photos li.current").inner_text()
    deadline = time.monotonic() + 30
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert len(held) == 1, "the page never sent its upload"
    held[0].continue_()
    wait_until(page, "() => document.getElementById('gray').naturalWidth === 320")
    wait_for_preview(page, 0)
    assert page.evaluate("() => document.getElementById('color').naturalWidth") == 320
    assert "reading" not in page.locator("#photos li.current").inner_text()
