"""Shared fixtures for the OpenAI-compatibility tests.

The tests talk to an already running OpenAI-compatible server (Paddock, or llama.cpp's
llama-server as the reference) through the official `openai` Python SDK.

Environment:
  PADDOCK_URL    base URL of the server, e.g. http://127.0.0.1:18080 (required; "/v1" is appended
                 unless already present)
  PADDOCK_MODEL  model id the server serves (default: SmolLM2-135M-Instruct.Q4_1, the file stem)
  PADDOCK_API_KEY  bearer token, if the server requires one (default: a dummy key)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import openai
import pytest

DEFAULT_MODEL = "SmolLM2-135M-Instruct.Q4_1"


@dataclass(frozen=True)
class Target:
    root: str  # e.g. http://127.0.0.1:18080
    base_url: str  # e.g. http://127.0.0.1:18080/v1
    model: str
    api_key: str


def _target_from_env() -> Target:
    url = os.environ.get("PADDOCK_URL", "").strip()
    if not url:
        raise pytest.UsageError(
            "PADDOCK_URL is not set. Start a server and point the tests at it, e.g.\n"
            "  PADDOCK_URL=http://127.0.0.1:18080 PADDOCK_MODEL=SmolLM2-135M-Instruct.Q4_1 "
            ".venv/bin/pytest tests/python\n"
            "(scripts/test.sh does this for you)."
        )
    url = url.rstrip("/")
    root = url[: -len("/v1")] if url.endswith("/v1") else url
    return Target(
        root=root,
        base_url=root + "/v1",
        model=os.environ.get("PADDOCK_MODEL", "").strip() or DEFAULT_MODEL,
        api_key=os.environ.get("PADDOCK_API_KEY", "") or "sk-no-key-required",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Fail loudly and once, before any test runs, instead of skipping everything.
    if not config.option.collectonly:
        t = _target_from_env()
        config.stash[_TARGET_KEY] = t


_TARGET_KEY = pytest.StashKey[Target]()


def pytest_report_header(config: pytest.Config) -> str:
    t = config.stash.get(_TARGET_KEY, None)
    return f"paddock target: {t.base_url} model={t.model}" if t else "paddock target: (unset)"


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    t = pytestconfig.stash.get(_TARGET_KEY, None)
    return t if t is not None else _target_from_env()


@pytest.fixture(scope="session")
def model(target: Target) -> str:
    return target.model


@pytest.fixture(scope="session")
def client(target: Target) -> openai.OpenAI:
    # No retries: a retried request would hide server errors and distort timing-related checks.
    return openai.OpenAI(base_url=target.base_url, api_key=target.api_key, max_retries=0, timeout=180.0)
