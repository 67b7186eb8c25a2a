"""A FastAPI route that turns plain query parameters into endpoint arguments itself.

FastAPI validates every parameter of every request with pydantic (a query-string multidict,
then a TypeAdapter call, a default deep-copied, per parameter): on /search, with sixteen
parameters, that is a few percent of a request whose engine work is a few milliseconds. Most
requests give a handful of canonical values (`q=oil&per_page=10`) whose result is certain
without pydantic. `FastQueryRoute` works out once per route, from the dependant FastAPI built,
how to read each of its plain parameters (str, int, bool, a str Literal or Enum, optionally
None, list[str], with length or bound constraints) and converts those itself. Anything it is not
sure of (a parameter type or constraint it does not know, a value that is not canonical or out of
bounds, a missing required or repeated single parameter) goes to FastAPI's own handler for the
whole request, so values and 422 errors stay exactly FastAPI's (tests/test_fast_query.py compares
the two over random query strings).
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from fastapi import params
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

UNSURE: Any = object()  # a converter's answer when FastAPI must decide
Convert = Callable[[str], Any]

_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
# The strings pydantic reads as booleans (it also takes other cases; those go to FastAPI).
_BOOLS = {
    **dict.fromkeys(("true", "1", "on", "yes", "t", "y"), True),
    **dict.fromkeys(("false", "0", "off", "no", "f", "n"), False),
}


@dataclass(frozen=True)
class Param:
    """How to read one parameter: its argument name, request key, converter and default."""

    name: str
    key: str
    convert: Convert
    many: bool  # list[...]: every value of the key
    required: bool
    default: Any


@dataclass(frozen=True)
class Plan:
    """The route's parameters, and where the request itself goes (its `request: Request` argument)."""

    query: tuple[Param, ...]
    path: tuple[Param, ...]
    request_name: str | None

    def arguments(self, request: Request) -> dict[str, Any] | None:
        """The endpoint's keyword arguments, or None when FastAPI must decide."""
        given: dict[str, list[str]] = {}
        query_string = request.scope.get("query_string", b"")
        if query_string:
            # What Starlette's QueryParams does with it (latin-1, then percent-decoded as UTF-8).
            for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
                given.setdefault(key, []).append(value)
        values: dict[str, Any] = {}
        for param in self.query:
            got = given.get(param.key)
            if not read(param, got, values):
                return None
        path_params = request.path_params
        for param in self.path:
            got = path_params.get(param.key)
            if not read(param, None if got is None else [got], values):
                return None
        if self.request_name:
            values[self.request_name] = request
        return values


def read(param: Param, got: list[str] | None, values: dict[str, Any]) -> bool:
    """Put the parameter's value in `values`; False when FastAPI must decide."""
    if not got:
        if param.required:
            return False
        # FastAPI deep-copies the default; the defaults handled here are immutable or lists of str.
        values[param.name] = list(param.default) if param.many else param.default
        return True
    if param.many:
        converted = [param.convert(v) for v in got]
        if any(c is UNSURE for c in converted):
            return False
        values[param.name] = converted
        return True
    if len(got) > 1:  # FastAPI takes the last; rare enough to leave to it
        return False
    value = param.convert(got[0])
    if value is UNSURE:
        return False
    values[param.name] = value
    return True


def plan_for(route: APIRoute) -> Plan | None:
    """The route's plan, or None when FastAPI should handle every request of it."""
    dependant = route.dependant
    endpoint = dependant.call
    returns = get_typed_return_annotation(endpoint) if endpoint else None
    if (
        route.methods != {"GET"}
        or not inspect.iscoroutinefunction(endpoint)
        or not (isinstance(returns, type) and issubclass(returns, Response))
        or dependant.dependencies
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.http_connection_param_name
        or dependant.websocket_param_name
        or dependant.background_tasks_param_name
        or dependant.response_param_name
        or dependant.security_scopes_param_name
    ):
        return None
    query = [_param(field, params.Query) for field in dependant.query_params]
    path = [_param(field, params.Path) for field in dependant.path_params]
    if any(p is None for p in query) or any(p is None or p.many for p in path):
        return None
    return Plan(tuple(query), tuple(path), dependant.request_param_name)  # type: ignore[arg-type]


def _param(field: Any, kind: type) -> Param | None:
    info = field.field_info
    if (
        type(info) is not kind
        or field.alias != field.name
        or info.validation_alias is not None
        or info.default_factory is not None
        or info.validate_default
        or field.config
    ):
        return None
    annotation, optional = _unwrap_optional(info.annotation)
    many = typing.get_origin(annotation) is list
    if many:
        (annotation,) = typing.get_args(annotation) or (None,)
        if optional or annotation is not str or info.metadata:
            return None
        convert: Convert | None = _str_converter([])
    else:
        convert = _converter(annotation, info.metadata)
    if convert is None:
        return None
    required = info.is_required()
    default = None if required else info.default
    if not required and not _plain_default(default, many):
        return None
    return Param(field.name, field.alias, convert, many, required, default)


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
        return annotation, False
    return annotation, False


def _plain_default(default: Any, many: bool) -> bool:
    """A default that needs no deep copy (or, for a list, a shallow one)."""
    if many:
        return isinstance(default, list) and all(isinstance(v, str) for v in default)
    return default is None or isinstance(default, str | int | bool | float | enum.Enum)


def _converter(annotation: Any, metadata: list[Any]) -> Convert | None:
    if annotation is str:
        return _str_converter(metadata)
    if annotation is int:
        return _int_converter(metadata)
    if metadata:
        return None
    if annotation is bool:
        return lambda value: _BOOLS.get(value, UNSURE)
    if typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        if not all(type(c) is str for c in choices):
            return None
        allowed = frozenset(choices)
        return lambda value: value if value in allowed else UNSURE
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        members: Mapping[str, enum.Enum] = {m.value: m for m in annotation if type(m.value) is str}
        if len(members) != len(annotation):
            return None
        return lambda value: members.get(value, UNSURE)
    return None


def _str_converter(metadata: list[Any]) -> Convert | None:
    low, high = 0, None
    for item in metadata:
        if type(item) is MaxLen:
            high = item.max_length
        elif type(item) is MinLen:
            low = item.min_length
        else:
            return None
    if not low and high is None:
        return lambda value: value
    return lambda value: value if low <= len(value) and (high is None or len(value) <= high) else UNSURE


def _int_converter(metadata: list[Any]) -> Convert | None:
    checks: list[Callable[[int], bool]] = []
    for item in metadata:
        if type(item) is Ge:
            checks.append(lambda v, b=item.ge: v >= b)
        elif type(item) is Le:
            checks.append(lambda v, b=item.le: v <= b)
        elif type(item) is Gt:
            checks.append(lambda v, b=item.gt: v > b)
        elif type(item) is Lt:
            checks.append(lambda v, b=item.lt: v < b)
        else:
            return None

    def convert(value: str) -> Any:
        if not _INT.fullmatch(value):
            return UNSURE
        number = int(value)
        return number if all(check(number) for check in checks) else UNSURE

    return convert


class FastQueryRoute(APIRoute):
    """An APIRoute whose plain GET requests skip FastAPI's parameter validation (see the module doc).

    Only for endpoints that are coroutines returning a Response themselves (there is no response
    model to validate) and take nothing but query and path parameters and the Request."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        plan = plan_for(self)
        if plan is None:
            return handler
        endpoint = self.dependant.call
        path = self.path

        async def app(request: Request) -> Response:
            values = plan.arguments(request)
            if values is None:
                return await handler(request)
            response = await endpoint(**values)  # type: ignore[misc]
            if not isinstance(response, Response):
                raise TypeError(f"{path}: a FastQueryRoute endpoint must return a Response")
            return response

        return app
