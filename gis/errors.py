"""The one base of the services' typed errors (pygeoapi style): each refusal carries the HTTP status the
API answers with and a message in Chinese, so the API, the pages and the CLI report it the same way."""


class ServiceError(Exception):
    """A refused request; ``status`` is the HTTP status, ``str(error)`` the message for the user."""

    status = 400
