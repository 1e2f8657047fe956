"""The review delivered to a webhook: one JSON POST (`render.review_document`, with the HTML inline under `html`),
retried with exponential backoff and jitter on connection errors, 429 and 5xx, as Alertmanager's webhook receivers
expect to be called (any 2xx is delivered; another 4xx is the receiver refusing it: not retried)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import tenacity


class DeliveryError(Exception):
    """The webhook did not take the review (its answer or the last error named)."""


class _Retryable(Exception):
    pass


def deliver(url: str, document: dict[str, Any], html: bytes, *, attempts: int = 4, first_wait_s: float = 0.5,
            timeout_s: float = 10.0, transport: Any = None) -> int:
    """POST the review; the receiver's status code, or `DeliveryError`."""
    body = json.dumps({**document, "html": html.decode()}).encode()
    headers = {"content-type": "application/json", "user-agent": "costline-review"}
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=first_wait_s, max=30) + tenacity.wait_random(0, first_wait_s),
        retry=tenacity.retry_if_exception_type(_Retryable), reraise=True)
    try:
        with httpx2.Client(timeout=timeout_s, transport=transport) as client:
            for attempt in retrying:
                with attempt:
                    try:
                        response = client.post(url, content=body, headers=headers)
                    except httpx2.TransportError as err:
                        raise _Retryable(f"{url}: {err}") from err
                    if response.status_code == 429 or response.status_code >= 500:
                        raise _Retryable(f"{url} answered {response.status_code}")
                    if not 200 <= response.status_code < 300:
                        raise DeliveryError(f"{url} refused the review: {response.status_code} "
                                            f"{response.text[:200]}")
                    return response.status_code
    except _Retryable as err:
        raise DeliveryError(f"{err} (after {attempts} attempts)") from err
    raise AssertionError("unreachable")  # pragma: no cover
