"""Discord's own OpenAPI description of HTTP API v10, used to check what crosses the wire.

The stand-in finds the operation of each request by method and path template, and checks
the JSON body against the operation's request schema (and its own answers against the
response schema), `$ref`s resolved through a `referencing` registry holding the whole
document. Format keywords (`snowflake`, `int64`, ...) are annotations, not checked.

One relaxation, for requests only: Discord reads a snowflake sent as a JSON integer as well
as a numeric string, and discord.py relies on it (a new file's `attachments[].id` is its
upload index, `0`; message references carry integer ids). The document says string
(`SnowflakeType`), which is what Discord answers with, so answers are checked strictly.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

OPENAPI_PATH = Path(__file__).resolve().parent / "discord_api" / "openapi.json"
DOCUMENT_URI = "urn:discord:openapi"
REQUEST_DOCUMENT_URI = "urn:discord:openapi:requests"
SNOWFLAKE = "SnowflakeType"
METHODS = ("get", "put", "post", "patch", "delete")
# A body problem is reported with at most this many messages, each cut to this length.
MAX_PROBLEMS = 5
MAX_PROBLEM_LENGTH = 400


@dataclass(frozen=True)
class Operation:
    """One documented operation, matched to a request path."""

    method: str  # upper case
    template: str  # as documented: "/channels/{channel_id}/messages/{message_id}"
    operation_id: str
    params: dict[str, str]  # the path's values, by template name
    needs_bot_token: bool
    has_request_body: bool
    body_required: bool


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _pointer(*parts: str) -> str:
    return "/" + "/".join(_escape(part) for part in parts)


class OpenAPI:
    def __init__(self, path: Path = OPENAPI_PATH) -> None:
        self.document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        schemas = self.document["components"]["schemas"]
        strict = schemas[SNOWFLAKE]
        lenient = {"anyOf": [strict, {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}]}
        requests = {
            **self.document,
            "components": {**self.document["components"], "schemas": {**schemas, SNOWFLAKE: lenient}},
        }
        self._registry: Registry[Any] = Registry().with_resources(
            [
                (DOCUMENT_URI, DRAFT202012.create_resource(self.document)),
                (REQUEST_DOCUMENT_URI, DRAFT202012.create_resource(requests)),
            ]
        )
        self._routes: list[tuple[int, re.Pattern[str], str]] = []
        for template in self.document["paths"]:
            segments = template.strip("/").split("/")
            literal = sum(1 for segment in segments if not segment.startswith("{"))
            pattern = "".join(
                f"/(?P<{segment[1:-1]}>[^/]+)" if segment.startswith("{") else "/" + re.escape(segment)
                for segment in segments
            )
            self._routes.append((literal, re.compile(pattern + r"\Z"), template))
        # Literal segments win over parameters: `/messages/@original` before `/messages/{message_id}`.
        self._routes.sort(key=lambda route: -route[0])

    def template_exists(self, method: str, template: str) -> bool:
        return method.lower() in self.document["paths"].get(template, {})

    def match(self, method: str, path: str) -> Operation | None:
        """The documented operation for `method path` (path without `/api/v10`), or None."""
        for _, pattern, template in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            spec = self.document["paths"][template].get(method.lower())
            if spec is None:
                continue
            security = spec.get("security", [])
            body = spec.get("requestBody")
            return Operation(
                method=method.upper(),
                template=template,
                operation_id=spec.get("operationId", ""),
                params=found.groupdict(),
                needs_bot_token=bool(security) and {} not in security,
                has_request_body=body is not None,
                body_required=bool(body and body.get("required")),
            )
        return None

    def path_allows(self, path: str) -> list[str]:
        """The methods documented for a path, for a 405."""
        for _, pattern, template in self._routes:
            if pattern.match(path):
                return [method.upper() for method in METHODS if method in self.document["paths"][template]]
        return []

    def request_problems(self, operation: Operation, body: Any) -> list[str]:
        """What is wrong with a JSON request body; empty when it follows the schema."""
        if not operation.has_request_body:
            return [] if body is None else ["the operation takes no request body, but one was sent"]
        if body is None:
            return ["the request body is required but none was sent"] if operation.body_required else []
        content = self.document["paths"][operation.template][operation.method.lower()]["requestBody"]["content"]
        media = "application/json" if "application/json" in content else next(iter(content))
        pointer = _pointer("paths", operation.template, operation.method.lower(), "requestBody", "content", media)
        return self._problems(REQUEST_DOCUMENT_URI, pointer + "/schema", body)

    def response_problems(self, operation: Operation, status: int, body: Any) -> list[str]:
        """What is wrong with a JSON answer the stand-in gives; empty when it follows the schema."""
        responses = self.document["paths"][operation.template][operation.method.lower()].get("responses", {})
        response = responses.get(str(status))
        if response is None or "application/json" not in response.get("content", {}):
            return []
        pointer = _pointer("paths", operation.template, operation.method.lower(), "responses", str(status), "content")
        return self._problems(DOCUMENT_URI, pointer + "/application~1json/schema", body)

    def _problems(self, document: str, pointer: str, instance: Any) -> list[str]:
        validator = self._validator(document, pointer)
        errors = list(validator.iter_errors(instance))
        if not errors:
            return []
        first = best_match(errors)
        ordered = [first, *(error for error in errors if error is not first)]
        problems = []
        for error in map(_explain, ordered[:MAX_PROBLEMS]):
            where = "/".join(str(part) for part in error.absolute_path) or "(body)"
            problems.append(f"{where}: {error.message}"[:MAX_PROBLEM_LENGTH])
        return list(dict.fromkeys(problems))

    @functools.lru_cache(maxsize=512)  # noqa: B019 - one OpenAPI per stand-in, kept for its lifetime
    def _validator(self, document: str, pointer: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": f"{document}#{pointer}"}, registry=self._registry)


def _explain(error: ValidationError) -> ValidationError:
    """The error inside an `anyOf`/`oneOf` that says most: from the alternative the body meant.

    Alternatives failing on an `enum` or `const` (a discriminator such as a callback's `type`)
    were not meant; of the rest, the one that failed deepest in the body got furthest.
    """
    while error.context:
        groups: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            groups.setdefault(sub.relative_schema_path[0], []).append(sub)
        meant = [subs for subs in groups.values() if not any(sub.validator in ("enum", "const") for sub in subs)]
        chosen = max(meant or list(groups.values()), key=lambda subs: max(len(sub.absolute_path) for sub in subs))
        error = best_match(chosen)
    return error


@functools.cache
def shared_openapi() -> OpenAPI:
    """Parsing the 1 MB document once per process is enough for every stand-in."""
    return OpenAPI()
