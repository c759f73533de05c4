"""The recognition server: the API and its limits, OpenAPI fuzzing, the micro-batcher, the demo
page in headless Chromium (photo upload and a fake webcam) and a short load test."""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("schemathesis")

import schemathesis
from fastapi.testclient import TestClient
from hardened_server import hardened_server, read_all
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from attnfer.faces import DEFAULT_DETECTOR
from attnfer.faces.draw import COLORS
from attnfer.pretrained import load_pretrained
from attnfer.recognize import Recognizer
from attnfer.serve.app import create_app
from attnfer.serve.batching import MicroBatcher
from attnfer.serve.hardening import (
    LOOPBACK_HOSTS,
    Busy,
    PixelBudget,
    allowed_hosts,
    exposure_warning,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.jpg"
LOAD_SCRIPT = ROOT / "benchmarks" / "serve_load.py"
LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
PAGE_TIMEOUT_S = 60
HEALTH = list(HealthCheck)  # the model makes examples slow; hypothesis need not warn
LOCAL = "http://localhost"  # a host the servers answer to (TestClient's default is not one)


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    """The shipped default model with the default detector, shared by every app here."""
    return Recognizer()


@pytest.fixture(scope="module")
def app(recognizer: Recognizer) -> Any:
    return create_app(recognizer)


@pytest.fixture(scope="module")
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url=LOCAL) as client:
        yield client


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds none."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def _check_happy_face(prediction: dict[str, Any]) -> None:
    assert (prediction["width"], prediction["height"]) == (512, 512)
    (face,) = prediction["faces"]
    assert face["label"] == "happy"
    assert list(face["probabilities"]) == LABELS
    assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert face["probabilities"]["happy"] == max(face["probabilities"].values())
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 512
    assert len(face["landmarks"]) == 5 and face["score"] > 0.9 and face["detected"] is True


def test_predict_finds_the_happy_astronaut(client: TestClient) -> None:
    response = client.post("/v1/predict", files={"file": ("astronaut.jpg", EXAMPLE.read_bytes())})
    assert response.status_code == 200
    _check_happy_face(response.json())
    assert response.json()["batch_size"] == 1 and response.json()["time_ms"] > 0


def test_a_large_jpeg_is_answered_in_its_own_pixels(app, client: TestClient, recognizer) -> None:
    """A 4000 x 3000 upload decodes at half size (twice the detector's 960 px is enough); the
    answer gives the file's size and its face where the full decode puts it."""
    photo = np.asarray(Image.open(EXAMPLE).convert("RGB").resize((4000, 3000)))
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", quality=90)
    decoded = asyncio.run(app.state.server.decode("big.jpg", buffer.getvalue()))
    assert decoded.reduction == 2 and decoded.image.shape == (1500, 2000, 3)
    response = client.post("/v1/predict", files={"file": ("big.jpg", buffer.getvalue())})
    assert response.status_code == 200
    answer = response.json()
    assert (answer["width"], answer["height"]) == (4000, 3000)
    (face,) = answer["faces"]
    (full,) = recognizer.predict(photo)
    assert face["label"] == full.label
    assert np.allclose(face["box"], full.box, atol=0.02 * 4000)


def test_batch_reports_a_corrupt_file_and_serves_the_others(client: TestClient) -> None:
    photo = EXAMPLE.read_bytes()
    files = [
        ("files", ("astronaut.jpg", photo, "image/jpeg")),
        ("files", ("cut.jpg", photo[: len(photo) // 3], "image/jpeg")),
        ("files", ("again.jpg", photo, "image/jpeg")),
    ]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 200
    good, cut, again = response.json()["results"]
    assert (good["filename"], good["status"], good["error"]) == ("astronaut.jpg", 200, None)
    _check_happy_face(good["prediction"])
    assert again["prediction"]["faces"] == good["prediction"]["faces"]
    assert (cut["status"], cut["prediction"]) == (422, None)
    assert cut["error"].startswith("cut.jpg: corrupt or truncated image")


@pytest.mark.parametrize(
    ("upload", "status", "message"),
    [
        (("empty.jpg", b"", "image/jpeg"), 422, "empty.jpg: empty data (0 bytes)"),
        (("notes.jpg", b"just some text\n", "image/jpeg"), 422, "notes.jpg: not an image"),
        (("photo.jpg", EXAMPLE.read_bytes(), "text/plain"), 415, "text/plain is not an image"),
        (("huge.png", _png_header(20000, 20000), "image/png"), 413, "huge.png: 400.0 MP is above"),
    ],
    ids=["empty", "text-named-jpg", "text-content-type", "20000x20000-png"],
)
def test_refused_uploads_get_a_4xx_naming_the_problem(
    client: TestClient, upload: tuple[str, bytes, str], status: int, message: str
) -> None:
    response = client.post("/v1/predict", files={"file": upload})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["detail"]
    batch = client.post("/v1/predict/batch", files=[("files", upload)])
    (item,) = batch.json()["results"]
    assert batch.status_code == 200
    assert (item["status"], item["error"]) == (status, response.json()["detail"])


def test_missing_file_and_wrong_body_get_one_message(client: TestClient) -> None:
    for response in (client.post("/v1/predict"), client.post("/v1/predict", json={"a": 1})):
        assert response.status_code == 422
        assert response.json() == {"detail": "file: Field required"}


def test_limits(recognizer: Recognizer) -> None:
    app = create_app(recognizer, max_upload_bytes=60_000, max_pixels=100_000, max_files=2)
    small = io.BytesIO()
    Image.open(EXAMPLE).resize((128, 128)).save(small, "JPEG")
    with TestClient(app, base_url=LOCAL) as client:
        big = client.post("/v1/predict", files={"file": ("a.jpg", EXAMPLE.read_bytes())})
        assert big.status_code == 413
        assert big.json()["detail"].startswith("the upload is 0.07")
        assert big.json()["detail"].endswith("MB, above the limit of 0.06 MB")
        wide = client.post("/v1/predict", files={"file": ("wide.png", _png_header(400, 300))})
        assert wide.status_code == 413
        limit = "wide.png: 400 x 300 pixels (0.1 MP) is above the limit of 0.1 MP"
        assert wide.json()["detail"] == limit
        three = [("files", (f"{i}.jpg", small.getvalue())) for i in range(3)]
        many = client.post("/v1/predict/batch", files=three)
        assert (many.status_code, many.json()) == (413, {"detail": "3 files, above the limit of 2"})
        chunked = client.post("/v1/predict", content=iter([b"--x\r\n"]))
        assert chunked.status_code == 411
        assert client.post("/v1/predict", files={"file": ("s.jpg", small.getvalue())}).is_success


def test_healthz_and_models(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "model": "default"}
    models = client.get("/v1/models").json()
    loaded = models["loaded"]
    assert loaded["name"] == "default" and loaded["arch"] == load_pretrained("default").arch
    assert loaded["labels"] == LABELS
    assert (loaded["input_size"], loaded["channels"]) == (48, 1)
    assert loaded["detector"] == DEFAULT_DETECTOR
    assert "recipe" in loaded["info"]
    assert load_pretrained("default").info["data"] not in json.dumps(models)  # no file paths
    assert not any("/" in str(value) for value in loaded["info"].values())
    assert {"default", "fast"} <= set(models["shipped"])
    assert loaded["balance"] == Recognizer().balance > 0  # what the probabilities are (docs)
    with TestClient(create_app(model="fast", balance=0), base_url=LOCAL) as as_trained:
        assert as_trained.get("/v1/models").json()["loaded"]["balance"] == 0


def test_openapi_schema_and_page(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/v1/predict", "/v1/predict/batch", "/v1/models", "/healthz"}
    ok = spec["paths"]["/v1/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"] == {"$ref": "#/components/schemas/Prediction"}
    assert {"box", "probabilities", "label"} <= set(
        spec["components"]["schemas"]["FaceOut"]["properties"]
    )
    page = client.get("/")
    assert page.status_code == 200 and 'id="file-input"' in page.text
    assert client.get("/static/app.js").status_code == 200


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_nothing_from_other_hosts(client: TestClient, page: str) -> None:
    html = client.get(page).text
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
    assert any(u.endswith(".js") for u in urls) and "/openapi.json" in urls
    assert all(u.startswith("/") for u in urls), urls
    assert all(client.get(u).status_code == 200 for u in urls)


# Every check but the two that judge acceptance: bytes the schema allows as a file are rarely an
# image (422), and the batch answers 200 with a per-file error even for nonsense.
UNJUDGED = [positive_data_acceptance, negative_data_rejection]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@pytest.fixture(scope="module")
def api_schema(recognizer: Recognizer) -> Any:
    """The schema of an app that also answers to schemathesis' in-process host name."""
    app = create_app(recognizer, allowed_hosts=LOOPBACK_HOSTS | {"testserver"})
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [
        *(("POST", path, mode) for path in ("/v1/predict", "/v1/predict/batch") for mode in MODES),
        ("GET", "/v1/models", GenerationMode.POSITIVE),
        ("GET", "/healthz", GenerationMode.POSITIVE),
    ],
)
def test_generated_requests_get_no_server_error(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    @given(case=api_schema[path][method].as_strategy(mode))
    @settings(max_examples=15, deadline=None, database=None, suppress_health_check=HEALTH)
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(excluded_checks=UNJUDGED)

    check()


def test_batcher_groups_concurrent_images(recognizer: Recognizer) -> None:
    image = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    batcher = MicroBatcher(recognizer, max_batch=4, max_wait_ms=200, workers=1)

    async def six() -> list[Any]:
        return await asyncio.gather(*(batcher.predict(image) for _ in range(6)))

    try:
        found = asyncio.run(six())
        assert sorted(f.batch_size for f in found) == [2, 2, 4, 4, 4, 4]
        assert all(f.faces[0].label == "happy" for f in found)
        batcher.close()  # the worker stops; the next image starts a new one
        assert batcher.submit(image).result(timeout=30).batch_size == 1
    finally:
        batcher.close()


def test_batcher_workers_detect_with_detectors_of_their_own(recognizer: Recognizer) -> None:
    image = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    batcher = MicroBatcher(recognizer, max_batch=2, max_wait_ms=20, workers=2)

    async def six() -> list[Any]:
        return await asyncio.gather(*(batcher.predict(image) for _ in range(6)))

    try:
        first, second = batcher.recognizers
        assert first is recognizer and second.detector is not recognizer.detector
        assert type(second.detector) is type(recognizer.detector)
        found = asyncio.run(six())
        assert all(f.faces[0].label == "happy" for f in found)
        assert found[0].faces == found[-1].faces
        running = {t.name for t in threading.enumerate() if t.name.startswith("attnfer-batcher")}
        assert running == {"attnfer-batcher-0", "attnfer-batcher-1"}
    finally:
        batcher.close()


def test_host_header_must_name_an_allowed_host(recognizer: Recognizer) -> None:
    app = create_app(recognizer, allowed_hosts=LOOPBACK_HOSTS | {"faces.example"})
    with TestClient(app, base_url="http://attacker.example") as attacker:
        for response in (attacker.get("/"), attacker.get("/v1/models"), attacker.get("/healthz")):
            assert response.status_code == 400
            assert response.json()["detail"].startswith("Host 'attacker.example' is not one")
        upload = attacker.post("/v1/predict", files={"file": ("a.jpg", EXAMPLE.read_bytes())})
        assert upload.status_code == 400
    for url in ("http://faces.example", "http://127.0.0.1:8000", "http://[::1]:8000", LOCAL):
        with TestClient(app, base_url=url) as allowed:
            assert allowed.get("/healthz").status_code == 200, url


def test_a_bind_beyond_loopback_warns_loudly_and_allows_its_address() -> None:
    for loopback in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        assert exposure_warning(loopback, None) is None
    bare = exposure_warning("0.0.0.0", None)
    assert bare is not None and bare.startswith("WARNING: serving on 0.0.0.0, reachable")
    assert "NO authentication" in bare and "--token" in bare
    with_token = exposure_warning("192.168.1.5", "s3cret")
    assert with_token is not None and "NO authentication" not in with_token
    assert allowed_hosts("0.0.0.0") == LOOPBACK_HOSTS
    assert allowed_hosts("192.168.1.5", ["Faces.LAN"]) == LOOPBACK_HOSTS | {
        "192.168.1.5",
        "faces.lan",
    }


def test_token_is_checked_on_every_route(recognizer: Recognizer) -> None:
    token = "s3cret; x=1, 2"  # a cookie needs it quoted
    app = create_app(recognizer, token=token)
    photo = {"file": ("a.jpg", EXAMPLE.read_bytes())}
    with TestClient(app, base_url=LOCAL) as client:
        for path in ("/", "/healthz", "/v1/models", "/openapi.json", "/static/app.js"):
            refused = client.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"] == "Bearer"
        assert client.post("/v1/predict", files=photo).status_code == 401
        wrong = {"Authorization": "Bearer guess"}
        assert client.get("/healthz", headers=wrong).status_code == 401
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.post("/v1/predict", files=photo, headers=bearer).status_code == 200
        page = client.get("/", params={"token": token})  # a browser opening the printed URL
        assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
        assert client.post("/v1/predict", files=photo).status_code == 200  # by the cookie


def test_answers_carry_the_security_headers(client: TestClient) -> None:
    for response in (
        client.get("/"),
        client.get("/docs"),
        client.get("/v1/models"),
        client.post("/v1/predict", files={"file": ("e.jpg", b"")}),
    ):
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self';" not in client.get("/").headers["content-security-policy"]


def test_websockets_are_refused(client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as refused:
        client.websocket_connect("/v1/predict").__enter__()
    assert refused.value.code == 1008


def test_content_length_with_chunked_body_is_refused_unread(app: Any) -> None:
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"100000\r\n" + bytes(1 << 20) + b"\r\n"  # 1 MB
    with hardened_server(app) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        answer = read_all(sock)
        with pytest.raises(OSError):  # the server closed the connection: 200 MB cannot go
            for _ in range(200):
                sock.sendall(chunk)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"both Content-Length and Transfer-Encoding" in answer


def _trickle(sock: socket.socket, limit_s: float = 20) -> float:
    """Send a byte every 0.2 s until the server closes the connection; the seconds it took."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < limit_s:
        try:
            sock.sendall(b"x")
            if sock.recv(4096) == b"":
                break
        except TimeoutError:
            continue
        except OSError:
            break
    return time.monotonic() - start


@pytest.mark.slow
def test_slow_clients_are_cut_off(app: Any) -> None:
    slow_head = b"GET /healthz HTTP/1.1\r\nX-Slow: "
    slow_body = b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: 9999\r\n\r\n"
    with hardened_server(app, read_timeout=1) as port:
        for start in (b"", slow_head, slow_body):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(start)
                assert _trickle(sock) < 10, start
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_requests_beyond_the_limit_in_flight_get_503(recognizer: Recognizer) -> None:
    app = create_app(recognizer, max_in_flight=1)
    stalled = b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: 9999\r\n\r\n"
    with hardened_server(app) as port:
        url = f"http://127.0.0.1:{port}"
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(stalled)  # its body never comes: it holds the one place
            time.sleep(0.3)
            busy = httpx.get(f"{url}/v1/models")
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
            assert "busy" in busy.json()["detail"]
            assert httpx.get(f"{url}/healthz").status_code == 200  # not counted
        deadline = time.monotonic() + 10
        while (response := httpx.get(f"{url}/v1/models")).status_code == 503:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert response.status_code == 200


def test_images_beyond_the_pixel_budget_get_503_after_the_wait(recognizer: Recognizer) -> None:
    app = create_app(recognizer, max_pixels=300_000, max_pixels_in_flight=300_000, queue_wait_s=0)
    photos = [("files", (f"{i}.jpg", EXAMPLE.read_bytes())) for i in range(3)]  # 0.26 MP each
    with TestClient(app, base_url=LOCAL) as client:
        results = client.post("/v1/predict/batch", files=photos).json()["results"]
        assert [r["status"] for r in results] == [200, 503, 503]
        assert results[1]["error"].startswith("1.jpg: the server is busy decoding")
        again = client.post("/v1/predict/batch", files=photos[:1]).json()["results"]
        assert again[0]["status"] == 200
        assert app.state.server.budget.used == 0


def test_pixel_budget_serves_in_order_and_gives_up_after_its_wait() -> None:
    budget = PixelBudget(100, wait_s=0.5)
    order: list[str] = []

    async def take(name: str, pixels: int, hold_s: float) -> None:
        async with budget.hold(pixels):
            order.append(name)
            await asyncio.sleep(hold_s)

    async def scenario() -> None:
        first = asyncio.create_task(take("a", 60, 0.2))
        await asyncio.sleep(0.01)
        waiting = [asyncio.create_task(take(n, p, 0)) for n, p in (("b", 60), ("c", 10))]
        await asyncio.gather(first, *waiting)
        assert order == ["a", "b", "c"]  # c fitted beside a, but waited its turn
        async with budget.hold(1000):  # above the total: the whole budget
            with pytest.raises(Busy, match="the server is busy decoding"):
                await take("d", 1, 0)
        assert budget.used == 0

    asyncio.run(scenario())


@pytest.mark.slow
def test_load_50_clients_without_errors(app: Any, live_server: Any) -> None:
    url = live_server(app)
    command = [sys.executable, str(LOAD_SCRIPT), "--url", url, "--clients", "50", "--seconds", "3"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "\n0 errors" in run.stdout and "requests/s" in run.stdout


def test_serve_command_binds_loopback(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "attnfer", "serve", "--port", str(port)]
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"http://127.0.0.1:{port}/healthz"):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert f"Uvicorn running on http://127.0.0.1:{port}" in log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


def _wait_for_faces(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, PAGE_TIMEOUT_S)
    return wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results li.face"))


def _check_box_drawn(driver: Any) -> None:
    """The canvas shows the first listed face's box in its label's colour (read after the next
    animation frame, in one go, as the webcam loop replaces the list)."""
    script = """
        const done = arguments[arguments.length - 1];
        requestAnimationFrame(() => requestAnimationFrame(() => {
            const item = document.querySelector("#results li.face");
            const [x1, y1, , y2] = item.dataset.box.split(",").map(Number);
            const context = document.getElementById("view").getContext("2d");
            const pixel = context.getImageData(x1, Math.floor((y1 + y2) / 2), 1, 1).data;
            done([item.dataset.label, Array.from(pixel)]);  // a pixel on the box's left edge
        }));
    """
    label, (*rgb, alpha) = driver.execute_async_script(script)
    assert alpha == 255 and np.abs(np.subtract(rgb, COLORS[label])).max() <= 8


@pytest.mark.browser
def test_page_labels_an_uploaded_photo(app: Any, live_server: Any, chrome: Any) -> None:
    from selenium.webdriver.common.by import By

    chrome.get(live_server(app))
    chrome.find_element(By.ID, "file-input").send_keys(str(EXAMPLE))
    (item,) = _wait_for_faces(chrome)
    assert item.get_attribute("data-label") == "happy"
    assert item.find_element(By.CLASS_NAME, "face-label").text.startswith("happy ")
    bars = item.find_elements(By.CLASS_NAME, "bar")
    assert [bar.get_attribute("data-emotion") for bar in bars] == LABELS
    canvas = chrome.find_element(By.ID, "view")
    assert (canvas.get_attribute("width"), canvas.get_attribute("height")) == ("512", "512")
    assert canvas.get_attribute("data-faces") == "1"
    _check_box_drawn(chrome)
    assert "1 face · 512 × 512" in chrome.find_element(By.ID, "status").text


@pytest.mark.browser
def test_api_docs_page_renders_every_operation(app: Any, live_server: Any, chrome: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chrome.get(live_server(app) + "/docs")
    WebDriverWait(chrome, 30).until(lambda d: len(d.find_elements(By.CLASS_NAME, "opblock")) == 4)
    paths = {e.text for e in chrome.find_elements(By.CLASS_NAME, "opblock-summary-path")}
    assert paths == {"/v1/predict", "/v1/predict/batch", "/v1/models", "/healthz"}


# The labels listed, read in one go: each webcam answer replaces the list (kept elements go stale)
LABELS_SHOWN = "return [...document.querySelectorAll('#results li.face')].map(f => f.dataset.label)"


def _write_y4m(path: Path, frames: int = 5) -> None:
    """A 640 x 480 YUV4MPEG2 (I420) clip of the example face on a gray background."""
    rgb = np.full((480, 640, 3), 128, np.uint8)
    rgb[40:440, 120:520] = np.asarray(Image.open(EXAMPLE).convert("RGB").resize((400, 400)))
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b  # BT.601, studio range
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    half = [c.reshape(240, 2, 320, 2).mean(axis=(1, 3)) for c in (u, v)]
    planes = b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in (y, *half))
    with path.open("wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            f.write(b"FRAME\n" + planes)


@pytest.mark.browser
def test_page_labels_the_webcam_live(app: Any, live_server: Any, tmp_path: Path) -> None:
    from conftest import make_chrome
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import WebDriverWait

    clip = tmp_path / "face.y4m"
    _write_y4m(clip)
    camera = (
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
    )
    driver = make_chrome(camera)
    try:
        driver.get(live_server(app))
        button = driver.find_element(By.ID, "webcam-button")
        button.click()
        wait = WebDriverWait(driver, PAGE_TIMEOUT_S)
        assert wait.until(lambda d: d.execute_script(LABELS_SHOWN)) == ["happy"]
        assert button.get_attribute("aria-pressed") == "true"
        canvas = driver.find_element(By.ID, "view")
        assert (canvas.get_attribute("width"), canvas.get_attribute("height")) == ("640", "480")
        shown = driver.find_element(By.CSS_SELECTOR, "#results li.face")
        wait.until(staleness_of(shown))  # a later frame's answer replaced it: the loop runs
        assert driver.execute_script(LABELS_SHOWN) == ["happy"]
        _check_box_drawn(driver)
        button.click()
        assert button.get_attribute("aria-pressed") == "false"
    finally:
        driver.quit()
