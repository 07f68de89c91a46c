"""One HTTP POST of a channel and how its answer is read: timeouts, proxies, at most 64 KiB
of answer, no redirects, and the classification of the status into an :class:`Outcome`.

Classification: 2xx delivered; 408, 429, 5xx, connection errors and timeouts are retryable;
any other 4xx (and a redirect) fails for good. ``Retry-After`` is honoured in both its forms
(seconds, HTTP-date). Reasons name a host, never a URL path, since Telegram's path holds the
bot token (and some webhook URLs hold one too).
"""

from __future__ import annotations

import functools
import http
import json
import math
import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp

from supervisor import __version__
from supervisor.notify.channels.base import Outcome, cut

MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = f"Stratavore/{__version__}"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, per RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def host_of(url: str) -> str:
    """A URL's host (and port), for messages: never its path, which may hold a token."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or url.split("/")[0]


def _cause(exc: BaseException) -> str:
    """The root cause of a connection error in a few words ("Connection refused")."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "os_error", None) or getattr(current, "certificate_error", None)
        if isinstance(inner, BaseException):  # aiohttp's connector errors wrap the OS's
            current = inner
            continue
        if isinstance(current, ssl.SSLError | socket.gaierror) and current.strerror:
            return current.strerror  # their errno is not the C library's
        if isinstance(current, OSError) and current.errno and current.errno > 0:
            return os.strerror(current.errno)  # asyncio's text names the address instead
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        current = current.__cause__ or current.__context__
    return type(exc).__name__


def _clean(text: str, limit: int = 200) -> str:
    """A server's error text, safe for a one-line reason."""
    return cut(" ".join(text.split()), limit).rstrip(".")


def json_detail(answer: bytes, key: str) -> str:
    try:
        value = json.loads(answer)
    except ValueError:
        return ""
    found = value.get(key) if isinstance(value, dict) else None
    return _clean(found) if isinstance(found, str) else ""


def text_detail(answer: bytes) -> str:
    for key in ("error", "message", "detail"):
        if found := json_detail(answer, key):
            return found
    text = answer.decode("utf-8", "replace")
    if text.lstrip().startswith("<"):  # an HTML error page says nothing useful in one line
        return ""
    return _clean(text.strip().split("\n", 1)[0]) if text.strip() else ""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


async def _read_answer(response: aiohttp.ClientResponse) -> bytes:
    """At most :data:`MAX_ANSWER_BYTES` of the answer's body (b"" when it breaks off: the
    status line is what counts)."""
    chunks: list[bytes] = []
    size = 0
    try:
        length = response.content_length
        if length is not None and length <= MAX_ANSWER_BYTES:  # the usual, short answer
            return await response.read()
        while size < MAX_ANSWER_BYTES:
            chunk = await response.content.read(MAX_ANSWER_BYTES - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (TimeoutError, aiohttp.ClientError):
        return b""
    return b"".join(chunks)


@functools.lru_cache(maxsize=256)
def _env_proxy(url: str) -> str | None:
    """The proxy the environment names for the URL's scheme (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``ALL_PROXY``) unless ``NO_PROXY`` exempts its host, as ``requests`` chose it; read once
    per URL (aiohttp's ``trust_env`` asks again in a thread for every request)."""
    parts = urlsplit(url)
    if proxy_bypass(parts.hostname or ""):
        return None
    proxies = getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


@functools.lru_cache(maxsize=16)
def _limits(timeout: tuple[float, float]) -> aiohttp.ClientTimeout:
    """aiohttp's form of (connect, read) seconds."""
    return aiohttp.ClientTimeout(total=None, sock_connect=timeout[0], sock_read=timeout[1])


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: tuple[float, float],
    where: str,
) -> Answer | Outcome:
    """POST once; the answer, or the retry/failure Outcome of a request that got none."""
    headers = {"User-Agent": USER_AGENT, **headers}
    try:
        async with session.post(
            url,
            data=body,
            headers=headers,
            timeout=_limits(timeout),
            allow_redirects=False,
            proxy=_env_proxy(url),
        ) as response:
            answer = await _read_answer(response)
            return Answer(response.status, response.headers, answer)
    except aiohttp.ConnectionTimeoutError:
        return Outcome.retry(f"Timed out connecting to {where} after {timeout[0]:g} s.")
    except aiohttp.SocketTimeoutError:
        return Outcome.retry(f"{where} did not answer within {timeout[1]:g} s.")
    except aiohttp.ClientSSLError as exc:
        return Outcome.retry(f"The TLS connection to {where} failed ({_cause(exc)}).")
    except aiohttp.ClientConnectionError as exc:
        return Outcome.retry(f"Could not connect to {where} ({_cause(exc)}).")
    except (ValueError, TypeError) as exc:  # bad URL or header (InvalidURL too): a setting
        return Outcome.failed(f"Could not send to {where} ({type(exc).__name__}).")
    except aiohttp.ClientError as exc:  # an answer that is not HTTP: the server's problem
        return Outcome.retry(f"{where} sent an answer that is not HTTP ({type(exc).__name__}).")


def classify(
    answer: Answer,
    where: str,
    detail: Callable[[bytes], str],
    retry_after: float | None = None,
) -> Outcome:
    """Delivered (2xx), retry (408, 429, 5xx) or failed (any other status); ``detail`` reads
    the server's words from the answer's body, only for an answer that is not a success."""
    status = answer.status
    if 200 <= status < 300:
        return Outcome.delivered(status)
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "status"
    words = detail(answer.body)
    said = f"{where} answered {status} {phrase}" + (f": {words}" if words else "")
    if status in (408, 429) or 500 <= status < 600:
        header = parse_retry_after(answer.headers.get("Retry-After"), time.time())
        wait = header if header is not None else retry_after
        return Outcome.retry(f"{said}.", wait, status)
    if 300 <= status < 400:
        target = host_of(answer.headers.get("Location", "")) or "another address"
        return Outcome.failed(
            f"{where} redirects to {target} ({status}); set the channel to the final URL.", status
        )
    return Outcome.failed(f"{said}.", status)
