"""``RequestError``: a request the server refuses, with its HTTP status."""


class RequestError(Exception):
    """A request the server refuses: an HTTP status and a one-line message.

    ``log_message`` is what the request log gets instead when ``message``
    quotes the request's values (the client still gets ``message``);
    default ``message``.
    """

    def __init__(self, status, message, log_message=None):
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.log_message = message if log_message is None else log_message
