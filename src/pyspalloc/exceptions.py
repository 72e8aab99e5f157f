"""Exceptions raised by pyspalloc, named as in ``spinnman``.

Every exception the client raises derives from :class:`SpinnmanException`, so a
program written against ``spinnman.spalloc`` catches the same things.
"""

from __future__ import annotations


class SpinnmanException(Exception):
    """Base of every error raised by the client and transceiver."""


class SpallocException(SpinnmanException):
    """The Spalloc service refused a request or answered unexpectedly."""


class SpallocBoardUnavailableException(SpallocException):
    """A job stayed QUEUED: the boards it asks for are not available.

    Raised by ``wait_until_ready()`` (with no arguments) for a job asking for a specific
    board that is still queued after a few polls, or for any other job still queued
    after the client's queue time.
    """


class SpinnmanIOException(SpinnmanException):
    """Sending or receiving failed (socket error, closed connection, proxy error)."""


class SpinnmanTimeoutException(SpinnmanException):
    """A reply did not arrive in time.

    Parameters
    ----------
    operation:
        What was being waited for.
    timeout:
        The time waited, in seconds.
    """

    def __init__(self, operation: str, timeout: float | None, message: str | None = None):
        self.operation = operation
        self.timeout = timeout
        text = message or f"timed out after {timeout} s waiting for {operation}"
        super().__init__(text)


class SpinnmanInvalidParameterException(SpinnmanException):
    """A parameter has a value that cannot be used.

    Parameters
    ----------
    parameter:
        The parameter's name.
    value:
        The rejected value.
    problem:
        Why it was rejected.
    """

    def __init__(self, parameter: str, value: object, problem: str):
        self.parameter = parameter
        self.value = value
        self.problem = problem
        super().__init__(f"{parameter} = {value!r}: {problem}")


class SpinnmanInvalidPacketException(SpinnmanException):
    """A packet could not be decoded."""


class SpinnmanUnexpectedResponseCodeException(SpinnmanException):
    """A board answered an SCP command with a result code other than RC_OK.

    Parameters
    ----------
    operation:
        The operation that failed.
    command:
        The command name.
    response:
        The result code name.
    """

    def __init__(self, operation: str, command: str, response: str):
        self.operation = operation
        self.command = command
        self.response = response
        super().__init__(f"{operation}: {command} got unexpected response code {response}")


class SpinnmanGenericProcessException(SpinnmanException):
    """A multi-request operation failed on one of its requests.

    Parameters
    ----------
    exception:
        The underlying error.
    x, y, p:
        The core the failed request was sent to.
    """

    def __init__(self, exception: BaseException, x: int, y: int, p: int, message: str = ""):
        self.exception = exception
        self.x, self.y, self.p = x, y, p
        text = message or f"request to {x},{y},{p} failed: {exception}"
        super().__init__(text)
