"""The API's changes as an overlay on the YAML baseline: which wins, and the merged config every processor runs.

The YAML file is the system admin's baseline (and the GitOps path); every change made through the admin API is a
row in the ledger's `costline_admin_changes` (`ledger.admin`) holding the object's whole state after it. The merged
config is the baseline with, object by object in the order of their first change, each object's latest state laid
over it:

* an object the API changed wins over the YAML's values for it (name, budget, models; a token's role and expiry),
  also after a YAML reload: a reload never drops an API change;
* an object the API created is added under its parent (found by identity, so a renamed parent keeps its children);
* a retired object is removed (its spend stays in the ledger under its name), and the tokens of a retired user,
  team or org are refused with a 403 naming it;
* a change that no longer applies to the baseline (its object or its parent left the YAML, or the YAML now defines
  a name the API created) is skipped and reported in `conflicts` (`GET /api/v1/admin/state`), never half-applied.

Objects are known by a stable identity, `<kind>:<name when first known>` (keys by fingerprint), so that a rename
keeps the object's versions and its children.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from costline.processor.config.core import ConfigError, CostlineConfig, parse_config
from costline.processor.governance.scope import SCOPED_DEPTH, Role, UnknownRole

KINDS = ("org", "team", "user", "key", "project", "token", "approval")
PARENT_KIND = {"team": "org", "user": "team", "key": "user"}
CHILDREN = {"org": "teams", "team": "users", "user": "keys"}


def object_id(kind: str, node: Mapping[str, Any]) -> str:
    if kind == "approval":
        return f"approval:{node['scope']}|{node['provider']}|{node['model']}"
    return f"{kind}:{node['fingerprint'] if kind == 'key' else node['name']}"


@dataclass
class Entry:
    """One object of the merged state: its node in the config document, where it sits, its version."""

    kind: str
    node: dict[str, Any]
    siblings: list[dict[str, Any]]
    parent: str | None
    """The parent's object id (teams, users, keys)."""
    version: int = 0


@dataclass
class Merged:
    config: CostlineConfig
    document: dict[str, Any]
    objects: dict[str, Entry]
    versions: dict[str, int]
    """Every object the API ever changed (retired ones too) -> its latest version."""
    latest: dict[str, dict[str, Any]]
    """Every object the API ever changed -> its latest state (`retired: true` when retired)."""
    refused_tokens: dict[str, str] = field(default_factory=dict)
    """`sha256:...` of a token whose user, team or org is retired -> why it is refused."""
    conflicts: list[str] = field(default_factory=list)
    last_id: int = 0

    def path(self, oid: str) -> tuple[str, ...]:
        """The scope path of a current object (`governance.scope`)."""
        entry = self.objects[oid]
        if entry.kind == "project":
            return (f"project:{entry.node['name']}",)
        if entry.kind == "token":
            return token_path(entry.node.get("role", ""))
        if entry.kind == "approval":
            return tuple(entry.node["scope"].split("/"))
        own = (entry.node["name"],)
        return (*self.path(entry.parent), *own) if entry.parent else own

    def find(self, kind: str, name: str) -> str | None:
        """The id of the current object of `kind` called `name` (a key: its fingerprint or, when unique, its name)."""
        found = [oid for oid, e in self.objects.items() if e.kind == kind
                 and (e.node["name"] == name or (kind == "key" and e.node.get("fingerprint") == name))]
        return found[0] if len(found) == 1 else None

    def version(self, oid: str) -> int:
        return self.versions.get(oid, 0)


def token_path(role: str) -> tuple[str, ...]:
    try:
        parsed = Role.parse(role)
    except UnknownRole:
        return ()
    return parsed.scope if parsed.kind in SCOPED_DEPTH else ()


def document_of(config: CostlineConfig) -> dict[str, Any]:
    """The config as the JSON-shaped document the overlay edits (and `parse_config` reads back)."""
    return config.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


def _index(document: dict[str, Any]) -> dict[str, Entry]:
    objects: dict[str, Entry] = {}

    def walk(kind: str, nodes: list[dict[str, Any]], parent: str | None) -> None:
        for node in nodes:
            oid = object_id(kind, node)
            objects[oid] = Entry(kind, node, nodes, parent)
            child = CHILDREN.get(kind)
            if child:
                walk({"teams": "team", "users": "user", "keys": "key"}[child], node.setdefault(child, []), oid)

    walk("org", document.setdefault("orgs", []), None)
    for node in document.setdefault("projects", []):
        objects[object_id("project", node)] = Entry("project", node, document["projects"], None)
    tokens = document.setdefault("api", {}).setdefault("tokens", [])
    for node in tokens:
        objects[object_id("token", node)] = Entry("token", node, tokens, None)
    approvals = document.setdefault("approvals", [])
    for node in approvals:
        objects[object_id("approval", node)] = Entry("approval", node, approvals, None)
    return objects


FIELDS = {"org": ("name", "budget", "models"), "team": ("name", "budget", "models"),
          "user": ("name", "budget", "models"), "key": ("name", "fingerprint", "budget", "models"),
          "project": ("name", "budget", "models"), "token": ("name", "sha256", "role", "expires", "user"),
          "approval": ("scope", "provider", "model", "expires", "reason", "approved_by")}
"""What an object's state holds (besides `parent` and `retired`), and so what the overlay lays over the YAML."""


def _lay(entry_node: dict[str, Any], kind: str, state: Mapping[str, Any]) -> None:
    for name in FIELDS[kind]:
        if state.get(name) is None:
            entry_node.pop(name, None)
        else:
            entry_node[name] = copy.deepcopy(state[name])


def _apply(document: dict[str, Any], objects: dict[str, Entry], oid: str, state: Mapping[str, Any],
           created: bool) -> str | None:
    """Lay one object's latest state on the document; the reason when it cannot be (nothing changed then)."""
    kind = oid.partition(":")[0]
    entry = objects.get(oid)
    if kind == "approval":
        # Only an approved request is in the config (`approvals:`); requested and denied ones are the audit log's.
        if entry is not None:
            entry.siblings.remove(entry.node)
            del objects[oid]
        if state.get("status") == "approved":
            node: dict[str, Any] = {}
            _lay(node, kind, state)
            document["approvals"].append(node)
            objects[oid] = Entry(kind, node, document["approvals"], None)
        return None
    if state.get("retired"):
        if entry is not None:
            for child_kind in [CHILDREN.get(kind)] if CHILDREN.get(kind) else []:
                if entry.node.get(child_kind):
                    return f"{oid}: retired, but the baseline gives it {child_kind}"
            entry.siblings.remove(entry.node)
            del objects[oid]
        return None
    if entry is not None:
        if created and kind in PARENT_KIND and entry.parent != state.get("parent"):
            return f"{oid}: created through the API, but the baseline defines it elsewhere"
        _lay(entry.node, kind, state)
        return None
    if not created:
        return f"{oid}: changed through the API, but no longer in the baseline"
    node = {}
    _lay(node, kind, state)
    if kind in PARENT_KIND:
        parent = objects.get(state.get("parent") or "")
        if parent is None:
            return f"{oid}: its parent {state.get('parent')} is not in the merged config"
        siblings = parent.node.setdefault(CHILDREN[parent.kind], [])
    elif kind == "org":
        siblings = document["orgs"]
    elif kind == "project":
        siblings = document["projects"]
    else:
        siblings = document["api"]["tokens"]
    siblings.append(node)
    objects[oid] = Entry(kind, node, siblings, state.get("parent"))
    return None


def merge(baseline: CostlineConfig, rows: Iterable[Mapping[str, Any]], *, extra: Mapping[str, Any] | None = None
          ) -> Merged:
    """The baseline with every change of `rows` (the store's, oldest first) laid over it; `extra` (an object id and
    state not stored yet) is laid last: what a change would make, to validate it before it is stored.

    Raises `ConfigError` only when `extra` makes the config invalid; a stored change that does not apply is skipped
    and named in `conflicts`."""
    latest: dict[str, dict[str, Any]] = {}
    versions: dict[str, int] = {}
    created: dict[str, bool] = {}
    last_id = 0
    for row in rows:
        oid = row["object"]
        latest.pop(oid, None)  # re-inserted: the order of the latest states is their last change's
        latest[oid] = json.loads(row["after"])
        versions[oid] = row["version"]
        created.setdefault(oid, row["action"] == "create")
        last_id = max(last_id, row["id"])
    document = document_of(baseline)
    objects = _index(document)
    conflicts: list[str] = []
    # The order of first changes, so a parent created through the API is there before its children.
    order = sorted(latest, key=lambda oid: _first_position(oid, latest))
    # Every change at once, validated once (the usual case: they all apply); only when the whole fails, one at a
    # time, each kept only if the config is still valid with it, so that one bad change never drops the others.
    pristine = copy.deepcopy(document)
    for oid in order:
        reason = _apply(document, objects, oid, latest[oid], created[oid])
        if reason is not None:
            conflicts.append(reason)
    try:
        parse_config(_without_refused(document, latest)[0])
    except ConfigError:
        document, conflicts = pristine, []
        objects = _index(document)
        for oid in order:
            before = copy.deepcopy(document)
            reason = _apply(document, objects, oid, latest[oid], created[oid])
            if reason is None:
                try:
                    parse_config(_without_refused(document, latest)[0])
                except ConfigError as err:
                    reason = f"{oid}: {err}"
            if reason is not None:
                conflicts.append(reason)
                document = before
                objects = _index(document)
    if extra is not None:
        oid, state = extra["object"], extra["state"]
        latest = {**latest, oid: state}
        reason = _apply(document, objects, oid, state, extra["create"] or created.get(oid, False))
        if reason is not None:
            raise ConfigError([reason])
    for oid, entry in objects.items():
        entry.version = versions.get(oid, 0)
    final, refused = _without_refused(document, latest)
    config = parse_config(final)
    return Merged(config, document, objects, versions, latest, refused, conflicts, last_id)


def _first_position(oid: str, latest: Mapping[str, Any]) -> tuple[int, int, int]:
    # Parents before children (an org before its teams before their users before their keys), then as stored; the
    # retired last and children first, so a team is retired after the users retired before it.
    kind = KINDS.index(oid.partition(":")[0])
    position = list(latest).index(oid)
    return (1, -kind, position) if latest[oid].get("retired") else (0, kind, position)


def _without_refused(document: dict[str, Any], latest: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The document without the tokens of retired users, teams and orgs; those tokens and why they are refused."""
    retired: dict[tuple[str, ...], str] = {}
    retired_users: dict[str, str] = {}
    for oid, state in latest.items():
        kind = oid.partition(":")[0]
        if state.get("retired") and kind in ("org", "team", "user"):
            path = tuple(state.get("path") or ())
            retired[path] = f"{kind} {'/'.join(path)} is retired"
            if kind == "user":
                retired_users[state["name"]] = retired[path]
    refused: dict[str, str] = {}
    if not retired:
        return document, refused
    kept = []
    for token in document.get("api", {}).get("tokens", []):
        path = token_path(token.get("role", ""))
        reason = next((why for p, why in retired.items() if p and path[: len(p)] == p), None)
        reason = reason or retired_users.get(token.get("user") or "")
        if reason is None:
            kept.append(token)
        else:
            refused[token["sha256"]] = f"token {token['name']}: {reason}, so its tokens are refused"
    return {**document, "api": {**document.get("api", {}), "tokens": kept}}, refused
