"""Small helpers shared by graphsim's tests: follow Graph paging, read Graph error bodies."""
from __future__ import annotations

IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}


def users_url(sim, upn: str) -> str:
    return f"{sim.graph_endpoint}/v1.0/users/{upn}"


def collect(session, url: str, headers: dict | None = None, limit: int = 1000) -> tuple[list[dict], int, dict]:
    """Follow @odata.nextLink to the end; returns (items, pages, last page body)."""
    items, pages, body = [], 0, {}
    while url:
        response = session.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["value"]
        pages += 1
        assert pages <= limit, "paging does not end"
        url = body.get("@odata.nextLink")
    return items, pages, body


def delta_round(session, url: str, headers: dict | None = None) -> tuple[list[dict], int, str]:
    """Follow a delta round to its deltaLink; returns (items, pages, deltaLink)."""
    items, pages = [], 0
    while True:
        response = session.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["value"]
        pages += 1
        assert pages < 1000
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, pages, body["@odata.deltaLink"]
        url = body["@odata.nextLink"]


def graph_error(response) -> tuple[str, str]:
    body = response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "innerError"}, err
    assert set(err["innerError"]) == {"date", "request-id", "client-request-id"}, err
    return err["code"], err["message"]
