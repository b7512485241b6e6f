"""deploy/nginx.conf's own limits (issue #12 item 5): a flood from one address gets 429 problem
documents from nginx, with Retry-After, before it reaches a replica; the replicas see each
client's address (X-Forwarded-For, set by nginx and never the client's own) to count its
sessions."""

import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.deploy import compose
from tests.deploy.nginx import Nginx
from tests.service.conftest import free_port
from tests.sessions.conftest import start_server
from tests.sessions.helpers import post_json

SMALL = {"parameters": {"W": [[1.0, 2.0]]}, "optimizer": {"type": "sgd", "lr": 0.1},
         "expr": "loss = (x @ W.T).sum()", "loss": "loss"}  # fmt: skip


@pytest.fixture
def balanced(tmp_path) -> Iterator[str]:
    """One replica (SQLite, the compose file's environment but its store) behind nginx."""
    env = {k: v for k, v in compose.api_environment().items() if k != "AUTOGRAD_STORE"}
    port = free_port()
    replica = start_server(port, tmp_path / "replica" / "data", AUTOGRAD_MAX_CLIENT_SESSIONS="1",
                           **env)  # fmt: skip
    nginx = None
    try:
        nginx = Nginx(tmp_path / "nginx", [f"127.0.0.1:{port}"], free_port()).start()
        yield nginx.url
    finally:
        if nginx is not None:
            nginx.stop()
        replica.terminate()
        replica.wait(10)


def test_a_flood_from_one_address_is_refused_by_nginx_with_problem_documents(balanced):
    statuses: Counter = Counter()
    refused: list[httpx.Response] = []
    lock = threading.Lock()

    def flood() -> None:
        with httpx.Client(base_url=balanced, timeout=30) as http:
            for _ in range(100):
                response = http.get("/livez")
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code == 429 and len(refused) < 5:
                        refused.append(response)

    threads = [threading.Thread(target=flood) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 1600 requests in well under the 14 s that 100/s plus a burst of 200 would allow.
    assert statuses[200] >= 200 and statuses[429] > 0, statuses
    assert set(statuses) == {200, 429}
    for response in refused:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"
        body = response.json()
        assert (body["type"], body["status"]) == ("/problems/rate-limited", 429)
        assert len(body["request_id"]) == 32


def test_the_replica_counts_the_client_nginx_saw_not_the_address_it_claims(balanced):
    with httpx.Client(base_url=balanced, timeout=30) as http:
        assert post_json(http, "/v1/sessions", SMALL).status_code == 201
        # Claiming another address changes nothing: nginx replaces X-Forwarded-For.
        again = post_json(http, "/v1/sessions", SMALL, **{"X-Forwarded-For": "198.51.100.9"})
        assert again.status_code == 429, again.text
        assert again.json()["client"] == "addr:127.0.0.1"
