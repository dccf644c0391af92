"""Property test of the HTTP API against its own OpenAPI document (schemathesis + hypothesis).

Schemathesis reads `/openapi.json` from the running gateway and hypothesis draws valid
(positive) and invalid (negative) requests across every documented operation. Whatever is sent,
the gateway must never answer with a server error, and every error must be the JSON
`{code, error, field}` shape with the HTTP status as its code.

(Schemathesis' own pytest plugin does not load under pytest 9 here, so the test drives its
strategies with hypothesis directly.)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.gateways import Gateway

EXAMPLES = 12  # per operation and mode: every endpoint gets its share, the run stays short


def check(case: Any, seen: Counter[str]) -> None:
    response = case.call(timeout=20)
    seen[f"{case.operation.label} {response.status_code}"] += 1
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith("application/json"), response.text
        body = response.json()
        assert body["code"] == response.status_code, body
        assert isinstance(body["error"], str) and body["error"], body
        assert "field" in body, body


@pytest.mark.slow
def test_no_request_gets_a_server_error_and_errors_are_json(gateway: Gateway) -> None:
    schema = schemathesis.openapi.from_url(gateway.url + "/openapi.json")
    seen: Counter[str] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                check(case, seen)

            try:
                run()
            except Unsatisfiable:
                # An operation with no parameters or body has no invalid form to send.
                assert mode is GenerationMode.NEGATIVE, operation.label
    print(sorted(seen.items()))
    operations = {key.rsplit(" ", 1)[0] for key in seen}
    # Every documented operation was exercised, not just the easy ones.
    assert len(operations) >= 13, sorted(seen)
