"""The web app end to end in a real headless Chromium (Debian's, driven by Playwright): upload two
frames, add a trajectory point, run on the micro model, get a video. Skipped where no browser is
installed; .ci/run installs both."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from conftest import textured_image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.system, pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    pytest.importorskip("gradio")
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "framerturbo", "app", "--model", "random-micro", "--port",
         str(port), "--height", "64", "--width", "64", "--num-frames", "5", "--steps", "2",
         "--max-upload-mb", "1"],
        stdout=open(log, "w"), stderr=subprocess.STDOUT,
        env={**__import__("os").environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            pytest.fail(f"app exited: {log.read_text()[-2000:]}")
    else:
        proc.kill()
        pytest.fail(f"app did not start: {log.read_text()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_app_binds_to_loopback_only(app_url):
    port = int(app_url.rsplit(":", 1)[1].strip("/"))
    other = [a for a in socket.gethostbyname_ex(socket.gethostname())[2]
             if not a.startswith("127.")]
    for address in other:
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex((address, port)) != 0


def test_upload_point_run_video(app_url, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(textured_image(64, 1)).save(a)
    Image.fromarray(textured_image(64, 1, shift=(5, 3))).save(b)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page()
        try:
            page.goto(app_url, timeout=60_000)
            page.locator("#start-image input[type=file]").set_input_files(str(a))
            page.locator("#end-image input[type=file]").set_input_files(str(b))
            page.wait_for_selector("#start-image img", timeout=30_000)
            page.wait_for_selector("#end-image img", timeout=30_000)
            page.locator("#start-image img").first.click(position={"x": 20, "y": 20})
            page.wait_for_function(
                "document.querySelector('#points').innerText.includes('1:')", timeout=30_000)
            page.locator("#end-image img").first.click(position={"x": 30, "y": 25})
            page.wait_for_function(
                "!document.querySelector('#points').innerText.includes('·')", timeout=30_000)
            page.locator("#run").click()
            video = page.wait_for_selector("#result-video video", timeout=180_000)
            page.wait_for_function(
                "document.querySelector('#result-video video').getAttribute('src')",
                timeout=60_000)
            assert video.get_attribute("src")
        except Exception:
            page.screenshot(path=str(Path(tmp_path) / "failure.png"))
            raise
        finally:
            browser.close()


def _post_file(url: str, payload: bytes) -> int:
    import urllib.error

    boundary = "framerturbo-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + payload + \
        f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        return urllib.request.urlopen(request, timeout=30).status
    except urllib.error.HTTPError as e:
        return e.code


def test_upload_limit_and_no_server_paths(app_url):
    import urllib.error

    assert _post_file(app_url + "gradio_api/upload", b"x" * 2_000_000) == 413
    assert _post_file(app_url + "gradio_api/upload", b"x" * 1000) == 200
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(app_url + "gradio_api/file=/etc/passwd", timeout=10)
    assert err.value.code in (403, 404)
