"""What a newcomer meets first: the API docs work offline, and the server says where it listens."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CLI, SAMPLE, api_client, build_index, cli_env, wait_until_ready

# Anything a page loads or links from elsewhere: a scheme-relative or absolute http(s) URL.
_OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)
_ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    built = build_index(tmp_path_factory.mktemp("newcomer") / "index", [SAMPLE])
    with api_client(built.index_dir) as client:
        yield client


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_docs_reference_no_outside_host_and_their_assets_are_served(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    page = response.text
    assert not _OUTSIDE.search(page), _OUTSIDE.search(page)
    assert "cdn" not in page.lower()
    assets = [url for url in _ASSET.findall(page) if not url.startswith("#")]
    assert len(assets) >= 2, assets  # a script, and a stylesheet or an icon
    for url in assets:
        assert url.startswith("/"), url
        served = client.get(url)
        assert served.status_code == 200, url
        assert len(served.content) > 500, url
    # The page reads the OpenAPI document of this app, which is served too.
    assert "/openapi.json" in page
    assert client.get("/openapi.json").json()["paths"]["/search"]


def test_the_swagger_bundle_reads_openapi_3_1(client: Any) -> None:
    """FastAPI writes OpenAPI 3.1, which Swagger UI reads from version 5 on."""
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    bundle = client.get("/docs-assets/swagger-ui-bundle.js").text
    versions = {int(v) for v in re.findall(r'"(\d+)\.\d+\.\d+"', bundle[:2_000_000])}
    assert 5 in versions


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_server_logs_one_line_with_the_url_it_serves(tmp_path: Path) -> None:
    built = build_index(tmp_path / "index", [SAMPLE])
    port = _free_port()
    command = [*CLI, "serve", "--port", str(port), "--index-dir", str(built.index_dir)]
    env = cli_env() | {"SEARCH_ACCESS_LOG": "false"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        found = re.match(r"Serving (http://\S+/) ", line)
        assert found, line
        url = found.group(1)
        assert url == f"http://127.0.0.1:{port}/"
        assert str(built.index_dir.resolve()) in line
        wait_until_ready(url.rstrip("/"), server)
        assert httpx.get(url, timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=20)
