"""Errors of the client-side commands: exit codes, and one line for each client failure."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import click

from pyspalloc.client import SpallocHTTPError
from pyspalloc.exceptions import (
    SpallocException,
    SpinnmanException,
    SpinnmanIOException,
    SpinnmanTimeoutException,
)

#: exit codes (the old spalloc's where they exist)
EXIT_ERROR = 1
EXIT_DESTROYED = 1
EXIT_NOT_FOUND = 4
EXIT_INTERRUPTED = 4
EXIT_CONNECTION = 6


class CLIError(click.ClickException):
    """An expected failure: one line on standard error and a non-zero exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code


def _root_cause(error: BaseException) -> BaseException:
    seen: set[int] = set()
    while error.__cause__ is not None and id(error) not in seen:
        seen.add(id(error))
        error = error.__cause__
    return error


def describe_error(error: BaseException, url: str | None = None) -> CLIError:
    """Turn a client exception into a one-line :class:`CLIError`."""
    where = f" {url}" if url else ""
    if isinstance(error, SpallocHTTPError):
        body = " ".join(error.body.split())[:200] or "no details"
        if error.status == 404:
            return CLIError(f"not found: {body}", EXIT_NOT_FOUND)
        if error.status in (401, 403):
            return CLIError(f"refused by the service (HTTP {error.status}): {body}")
        return CLIError(f"the service answered HTTP {error.status}: {body}")
    if isinstance(error, SpinnmanTimeoutException):
        return CLIError(f"timed out: {error}", EXIT_CONNECTION)
    if isinstance(error, SpinnmanIOException):
        cause = _root_cause(error)
        text = str(cause)
        if "Connection refused" in text or isinstance(cause, ConnectionRefusedError):
            return CLIError(f"cannot reach the service{where}: connection refused", EXIT_CONNECTION)
        if "Name or service not known" in text or "getaddrinfo" in text:
            return CLIError(f"cannot reach the service{where}: unknown host", EXIT_CONNECTION)
        found = re.search(r"certificate verify failed: ([^(]*)", str(error))
        if found or "CERTIFICATE_VERIFY_FAILED" in str(error):
            why = found.group(1).strip() if found else "not trusted"
            return CLIError(
                f"cannot verify the certificate of the service{where} ({why}); set "
                "REQUESTS_CA_BUNDLE to the file of the certificate that signed it",
                EXIT_CONNECTION,
            )
        return CLIError(f"cannot talk to the service{where}: {error}", EXIT_CONNECTION)
    if isinstance(error, SpallocException) and str(error).startswith("Unable to login"):
        if re.match(
            r"Unable to login( with the bearer token)?: HTTP (302|303|401|403)\b", str(error)
        ):
            return CLIError(
                f"login to{where} failed: wrong user name, password or token "
                "(or the account is locked or disabled)"
            )
        return CLIError(f"login to{where} failed: {error}")
    if isinstance(error, SpinnmanException):
        return CLIError(str(error) or type(error).__name__)
    return CLIError(f"{type(error).__name__}: {error}")


@contextlib.contextmanager
def client_errors(url: str | None = None) -> Iterator[None]:
    """Turn the client's exceptions raised inside into one-line :class:`CLIError`\\ s."""
    try:
        yield
    except click.ClickException:
        raise
    except (SpinnmanException, OSError) as error:
        raise describe_error(error, url) from None
