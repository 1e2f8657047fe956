"""`costline admin ...`: the admin API's client (the command line goes through the API, never the ledger, so the
same scopes, bounds, versions and audit log apply to it as to any caller)."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

import httpx2

TIMEOUT_S = 30.0


class ClientError(Exception):
    """The API refused (its status and message) or could not be reached."""


class AdminClient:
    def __init__(self, url: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx2.Client(base_url=url.rstrip("/"), headers=headers, timeout=TIMEOUT_S)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx2.HTTPError as err:
            raise ClientError(f"cannot reach the API at {self._http.base_url}: {err}") from None
        if response.status_code >= 400:
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = response.text.strip()
            raise ClientError(f"{response.status_code}: {message}")
        return response

    def state(self, kind: str | None = None) -> dict[str, Any]:
        return self._send("GET", "/api/v1/admin/state", params={"kind": kind} if kind else None).json()

    def audit(self, obj: str | None = None) -> dict[str, Any]:
        return self._send("GET", "/api/v1/admin/audit", params={"object": obj} if obj else None).json()

    def export(self) -> str:
        return self._send("GET", "/api/v1/admin/export").text

    def version_of(self, kind: str, name: str) -> int:
        """The object's current version, for a change made without `--version` (as of this read)."""
        for obj in self.state(kind)["objects"]:
            if obj["name"] == name or obj.get("fingerprint") == name:
                return int(obj["version"])
        raise ClientError(f"404: no {kind} named {name!r} in this token's scope")

    def approval_version(self, scope: str, provider: str, model: str) -> int:
        """The version of the request for `model` (or the pattern it falls under) waiting for `scope`."""
        from fnmatch import fnmatchcase

        for obj in self.state("approval")["objects"]:
            if (obj["scope"] == scope and obj["provider"] in (provider, "*") and obj.get("status") == "requested"
                    and (obj["model"] == model or fnmatchcase(model.lower(), obj["model"].lower()))):
                return int(obj["version"])
        raise ClientError(f"404: no request waiting for {provider}/{model} in {scope}")

    def change(self, kind: str, body: Mapping[str, Any], version: int | None = None) -> dict[str, Any]:
        headers = {"If-Match": f'"{version}"'} if version is not None else {}
        return self._send("POST", f"/api/v1/admin/{kind}s", content=json.dumps(body), headers=headers).json()


def new_token() -> tuple[str, str]:
    """A fresh API token and the `sha256:` value the server stores instead (the token is shown once, never sent)."""
    token = "cl_" + secrets.token_urlsafe(32)
    return token, "sha256:" + hashlib.sha256(token.encode()).hexdigest()
