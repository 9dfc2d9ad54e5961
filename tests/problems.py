"""Assertions on problem+json answers: the status and the stable code a
client acts on, not the status alone."""


def assert_problem(response, status: int, code: str) -> dict:
    """Assert ``response`` is a problem with ``status`` and ``code``;
    return its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code, body
    return body
