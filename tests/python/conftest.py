"""Shared fixtures: the URL of the running `ferrymq serve` (scripts/e2e.sh starts it and sets
FERRYMQ_URL) and helpers to call it."""

import os
import uuid

import pytest
import requests


@pytest.fixture(scope="session")
def base_url() -> str:
    url = os.environ.get("FERRYMQ_URL")
    if not url:
        pytest.fail("FERRYMQ_URL is not set: run these tests through scripts/e2e.sh")
    health = requests.get(f"{url}/healthz", timeout=10)
    assert health.status_code == 200, health.text
    return url.rstrip("/")


@pytest.fixture()
def unique() -> str:
    """A fresh name for topics and groups, so tests never share state."""
    return "py-" + uuid.uuid4().hex[:12]
