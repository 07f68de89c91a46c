"""A small blocking client for the supervisor's HTTP API, used by the CLI and stratavore-agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from supervisor import paths, runtime
from supervisor.errors import ErrorCode


class NotRunning(Exception):
    """No supervisor answers for this data dir."""


class ClientError(Exception):
    """The API refused a request; ``code`` is an :class:`ErrorCode`."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ApiClient:
    """Talks to the supervisor of one data dir, with the admin token or a runner's token."""

    def __init__(self, base_url: str, token: str | None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = requests.Session()
        # Loopback only: never route through a proxy configured for the outside world.
        self.session.trust_env = False

    @classmethod
    def discover(cls, root: Path | None = None, timeout: float = 10.0) -> ApiClient:
        """The client for the supervisor running on ``root`` (default: the data dir)."""
        root = root or paths.data_dir()
        info = runtime.read_runtime(root)
        if info is None:
            raise NotRunning(
                f"No Stratavore supervisor is running for {root}; "
                "start one with `stratavore daemon`."
            )
        return cls(info.url, runtime.admin_token(root), timeout)

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> Any:
        """Send one request; return the decoded answer or raise ClientError / NotRunning."""
        headers = {}
        if token or self.token:
            headers["Authorization"] = f"Bearer {token or self.token}"
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                json=body,
                params=params,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise NotRunning(f"The supervisor at {self.base_url} did not answer ({exc}).") from exc
        if response.status_code >= 400:
            try:
                payload = response.json()
                code, message = ErrorCode.from_code(payload["error"]), payload["message"]
            except (ValueError, KeyError, TypeError):
                code = ErrorCode.INTERNAL
                message = f"The supervisor answered HTTP {response.status_code}."
            raise ClientError(code, message)
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return response.json()
        return response.text

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
        return self.request("POST", path, body=body if body is not None else {}, token=token)
