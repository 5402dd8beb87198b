"""The OpenAPI schema fuzzed with schemathesis: no input, valid or not, gives a 5xx. Bounded examples per
operation (about a minute in all); simulations run under small limits."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402

from blis.web.app import create_app  # noqa: E402
from blis.web.sim import Limits  # noqa: E402

APP = create_app(Limits(max_requests=200, max_sweep=3, time_limit_s=1.0))
# examples + fuzzing phases; the coverage phase (hundreds of boundary cases per operation) is left out to keep
# the run bounded
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}})
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_error(case):
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])
