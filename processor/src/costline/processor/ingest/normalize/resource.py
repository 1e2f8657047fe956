"""Resource attributes, decoded once per ResourceSpans, with what every call of that resource shares precomputed."""

from __future__ import annotations

from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from costline import attributes as A
from costline.processor.ingest.normalize.values import as_plain


class ResourceAttributes(dict[str, object]):
    """A plain dict of the resource's scalar attributes, plus the owner keys, environment and service name, so that
    `normalize_span` does not look them up again for every span of the resource."""

    __slots__ = ("owner", "environment", "service_name")

    def __init__(self, items: dict[str, object]) -> None:
        super().__init__(items)
        self.owner: dict[str, str] = {k: v for k in A.OWNER_KEYS if isinstance(v := items.get(k), str) and v}
        self.environment = _text(items, A.DEPLOYMENT_ENVIRONMENT) or _text(items, A.DEPLOYMENT_ENVIRONMENT_OLD)
        self.service_name = _text(items, A.SERVICE_NAME)


def _text(items: dict[str, object], key: str) -> str | None:
    value = items.get(key)
    return value if isinstance(value, str) and value else None


def resource_attributes(resource: Resource) -> dict[str, object]:
    """The resource's scalar attributes (arrays and maps dropped), decoded once per ResourceSpans."""
    return ResourceAttributes({kv.key: as_plain(kv.value) for kv in resource.attributes})


def shared(resource: object) -> ResourceAttributes:
    """Any mapping the caller passes (tests may pass a plain dict) as a `ResourceAttributes`."""
    if isinstance(resource, ResourceAttributes):
        return resource
    return ResourceAttributes(dict(resource))  # type: ignore[call-overload]
