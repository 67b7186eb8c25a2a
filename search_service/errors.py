"""Every failure the service reports on purpose, with its HTTP status and CLI exit code.

The API maps these to one JSON error shape in a single handler; the CLI maps them to a message
on stderr and an exit code. Anything else escaping is a bug.
"""

from __future__ import annotations


class ServiceError(Exception):
    status_code = 500
    code = "internal_error"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ServiceError):
    code = "invalid_config"
    exit_code = 3


class IndexLockedError(ServiceError):
    status_code = 409
    code = "index_locked"
    exit_code = 4


class IndexNotReadyError(ServiceError):
    status_code = 503
    code = "index_not_ready"
    exit_code = 5


class InputError(ServiceError):
    """A path given to the importer cannot be read at all."""

    code = "unreadable_input"
    exit_code = 2


class IndexWriteError(ServiceError):
    """Tantivy could not write the index (disk full, permissions): nothing was switched in."""

    code = "index_write_failed"
    exit_code = 7


class TooManyRejectsError(ServiceError):
    code = "too_many_rejects"
    exit_code = 6


class InvalidParameterError(ServiceError):
    status_code = 422
    code = "invalid_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


class NotFoundError(ServiceError):
    status_code = 404
    code = "not_found"


class UnauthorizedError(ServiceError):
    status_code = 401
    code = "unauthorized"


class SemanticUnavailableError(ServiceError):
    """Semantic ranking is enabled but its extra (the model and its runtime) is missing or damaged."""

    code = "semantic_unavailable"
    exit_code = 8
