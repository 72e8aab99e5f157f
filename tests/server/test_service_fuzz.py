"""Arbitrary JSON bodies and query values get 201 or a plain-text 400, never a 500."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.service_support import login

FIELDS = ["keepalive-interval", "num-boards", "dimensions", "board", "machine-name", "tags",
          "max-dead-boards", "owner", "group", "x", "width"]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["PT60S", "PT1M", "P", "PT", "default", "spin24", "127.1.0.1"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                ["x", "y", "z", "width", "height", "cabinet", "frame", "board", "address"]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=6,
)
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=5)


def test_random_job_requests_never_break_the_service(service: Any) -> None:
    alice = login(service, "alice")

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies)
    def check(body: dict[str, Any]) -> None:
        data = json.dumps(body)  # allows NaN and Infinity, which the service must refuse
        response = alice.post("jobs", data=data, headers={"Content-Type": "application/json"})
        assert response.status_code in (201, 400), (body, response.status_code, response.text)
        if response.status_code == 400:
            assert response.headers["content-type"].startswith("text/plain")
            assert response.text

    check()
    for query in ("jobs?limit=99999999999999999999", "jobs?start=-1", "jobs/99999999999999999",
                  "machines/spin24/chip?x=99999999999999&y=1", "jobs?limit=0",
                  "machines/spin24/logical-board?x=a"):  # fmt: skip
        response = alice.get(query)
        assert response.status_code in (400, 404), (query, response.text)
    assert alice.get("jobs").status_code == 200
