"""``RequestError``: a request the server refuses, with its HTTP status."""


class RequestError(Exception):
    """A request the server refuses: an HTTP status and a one-line message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = int(status)
        self.message = message
