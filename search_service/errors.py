"""Every failure the service reports on purpose, with its HTTP status and CLI exit code.

The API maps these to one JSON error shape in a single handler; the CLI maps them to a message
on stderr and an exit code. Anything else escaping is a bug.
"""

from __future__ import annotations

import errno


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
    """The index directory could not be written (a read-only or failing file system, permissions):
    nothing was switched in, nothing acknowledged. Clients may retry later (Retry-After)."""

    status_code = 503
    code = "index_write_failed"
    exit_code = 7
    retry_after_s = 30


class InsufficientStorageError(IndexWriteError):
    """The index directory's file system is full (or below SEARCH_WRITE_MIN_FREE_MB): writes are refused."""

    status_code = 507
    code = "insufficient_storage"


# errno values that mean "no room" rather than "cannot write at all".
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
_NO_SPACE_WORDS = ("no space left", "disk quota exceeded")


def storage_error(what: str, index_dir: object, exc: BaseException) -> ServiceError:
    """A failed write into the index directory as the error to report: full (507), read-only or
    failing (503), or anything else (unusable path: InputError)."""
    text = str(exc)
    message = f"{what}: {getattr(exc, 'strerror', None) or text}"
    if getattr(exc, "errno", None) in _NO_SPACE or any(w in text.lower() for w in _NO_SPACE_WORDS):
        return InsufficientStorageError(f"{message}; the file system of {index_dir} is full: free space there")
    if getattr(exc, "errno", None) in (errno.EROFS, errno.EIO) or not isinstance(exc, OSError):
        return IndexWriteError(f"{message}; check the file system of {index_dir}")
    return InputError(message)


class TooManyRejectsError(ServiceError):
    status_code = 422
    code = "too_many_rejects"
    exit_code = 6


class InvalidParameterError(ServiceError):
    status_code = 422
    code = "invalid_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


class InvalidValuesError(InvalidParameterError):
    """Every problem found in one input at once, each as `path: what to fix`."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        ServiceError.__init__(self, "; ".join(f"{path}: {message}" for path, message in problems))
        self.parameter = problems[0][0] if problems else ""
        self.problems = problems


class Problems:
    """Collects an input's problems (path, message) so that one 422 names them all."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.found.append((path, message))

    def raise_any(self) -> None:
        if self.found:
            raise InvalidValuesError(self.found)


def json_path(location: tuple[str | int, ...] | list[str | int]) -> str:
    """A location inside a JSON value in the one path style of every message: rules[0].pin[0].position."""
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class NotFoundError(ServiceError):
    status_code = 404
    code = "not_found"


class UnauthorizedError(ServiceError):
    status_code = 401
    code = "unauthorized"


class EditConflictError(ServiceError):
    """An editorial set was changed by someone else since the edit was based on it."""

    status_code = 409
    code = "edit_conflict"


class EditorialStateError(ServiceError):
    """The editorial sets in the index directory cannot be read or written (damage, disk full)."""

    status_code = 503
    code = "editorial_state_unavailable"
    exit_code = 2


class InvalidJSONError(ServiceError):
    """A request body that is not JSON (or not the JSON Lines its content type says)."""

    status_code = 400
    code = "invalid_json"


class InvalidArticleError(ServiceError):
    """An article sent to the write API that the import rules reject; the message is the CLI's reason."""

    status_code = 422
    code = "invalid_article"


class PayloadTooLargeError(ServiceError):
    status_code = 413
    code = "payload_too_large"


class TooManyRequestsError(ServiceError):
    status_code = 429
    code = "too_many_requests"


class UnavailableError(ServiceError):
    """A part of the service is switched off or has failed (the message says which and why)."""

    status_code = 503
    code = "unavailable"


class UnsupportedMediaTypeError(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class SemanticUnavailableError(ServiceError):
    """Semantic ranking is enabled but its extra (the model and its runtime) is missing or damaged."""

    code = "semantic_unavailable"
    exit_code = 8
