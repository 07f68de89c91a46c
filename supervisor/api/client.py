"""A small blocking client for the supervisor's HTTP API, used by the CLI and stratavore-agent.

``requests`` is imported when the first client is made: ``stratavore daemon`` starts through
the CLI's module, and a supervisor has no use for it (3 MB of its memory).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.core import paths, runtime
from supervisor.core.errors import ErrorCode

if TYPE_CHECKING:
    import requests

LOCK_WAIT_S = 30.0  # how long a request refused because the DB is locked is tried again


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

    def __init__(
        self,
        base_url: str,
        token: str | None,
        timeout: float = 10.0,
        lock_wait: float = LOCK_WAIT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.lock_wait = lock_wait
        # told (the refusal's sentence, the seconds it will wait) when a request starts
        # waiting for a locked database: the CLI says so on stderr
        self.on_wait: Callable[[str, float], None] | None = None
        import requests

        self.session = requests.Session()
        # Loopback only: never route through a proxy configured for the outside world.
        self.session.trust_env = False

    @classmethod
    def discover(
        cls, root: Path | None = None, timeout: float = 10.0, lock_wait: float = LOCK_WAIT_S
    ) -> ApiClient:
        """The client for the supervisor running on ``root`` (default: the data dir)."""
        root = root or paths.data_dir()
        info = runtime.read_runtime(root)
        if info is None:
            raise NotRunning(
                f"No Stratavore supervisor is running for {root}; "
                "start one with `stratavore daemon`."
            )
        return cls(info.url, runtime.admin_token(root), timeout, lock_wait)

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> Any:
        """Send one request; return the decoded answer or raise ClientError / NotRunning.

        A request refused because another program holds the database's lock changed nothing,
        so it is sent again after the ``Retry-After`` the answer gives, for up to
        ``lock_wait`` seconds (``on_wait`` is told once)."""
        waiting_since = None
        while True:
            response = self._send(method, path, body, params, token)
            if response.status_code < 400:
                break
            code, message = self._error(response)
            retry_after = response.headers.get("Retry-After", "")
            if code is not ErrorCode.DATABASE_LOCKED or not retry_after.isdigit():
                raise ClientError(code, message)
            now = time.monotonic()
            if waiting_since is None:
                waiting_since = now
                if self.on_wait is not None:
                    self.on_wait(message, self.lock_wait)
            if now + int(retry_after) - waiting_since > self.lock_wait:
                raise ClientError(code, f"{message} (waited {now - waiting_since:.0f} s)")
            time.sleep(int(retry_after))
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return response.json()
        return response.text

    def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        params: dict[str, Any] | None,
        token: str | None,
    ) -> requests.Response:
        import requests

        headers = {}
        if token or self.token:
            headers["Authorization"] = f"Bearer {token or self.token}"
        try:
            return self.session.request(
                method,
                self.base_url + path,
                json=body,
                params=params,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise NotRunning(f"The supervisor at {self.base_url} did not answer ({exc}).") from exc

    @staticmethod
    def _error(response: requests.Response) -> tuple[ErrorCode, str]:
        try:
            payload = response.json()
            return ErrorCode.from_code(payload["error"]), payload["message"]
        except (ValueError, KeyError, TypeError):
            return ErrorCode.INTERNAL, f"The supervisor answered HTTP {response.status_code}."

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
        return self.request("POST", path, body=body if body is not None else {}, token=token)
