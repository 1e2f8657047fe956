"""One administrative change, checked and stored: who may make it, within which bounds, against which version.

`Administration.change` takes a request as the admin API (and `costline admin`) sends it — a kind (`team`,
`project`, `user`, `key`, `token`, `org`), an action (`create`, `update`, `rename`, `retire`) and the fields — and,
in this order: resolves the object (404 naming it when unknown); checks the version the caller saw (`If-Match`: 428
without it, 409 when another change came first); checks the caller's scope (403 naming the scope); builds the new
state, each field validated by the config's own models (`Budget`, `ModelRule`: 422 naming the key and the rule); checks
the bounds of the level above (a budget over its parent's, a model its parent's rules refuse: 422 naming the rule);
validates the whole merged config as `check-config` would; and stores the change as one row, which is the audit log
too. A clear API key anywhere in the request is refused before anything else and never echoed.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import TypeAdapter, ValidationError

from costline.processor.config.core import (
    Budget,
    ConfigError,
    CostlineConfig,
    ModelRule,
)
from costline.processor.config.validators import NAME, NAME_RULE
from costline.processor.governance.overlay import CHILDREN, FIELDS, PARENT_KIND, Merged, merge, object_id
from costline.processor.governance.scope import SYSTEM_ADMIN, Role, UnknownRole, scope_text
from costline.processor.ledger.admin import AdminStore, VersionConflict
from costline.processor.policy import LevelRule, ModelPolicy

ACTIONS = ("create", "update", "rename", "retire")
APPROVAL_ACTIONS = ("request", "approve", "deny")
_MODELS = TypeAdapter(dict[str, ModelRule])
_CLEAR_KEY = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,})")
_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
_TOKEN_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


_EXPIRY = Role(SYSTEM_ADMIN)
"""Who records an expiry: the processor itself (actor `costline`)."""


def approver_of(path: tuple[str, ...]) -> str:
    """Who decides a request for `path`: the admin one level above it (the `approver` label alerts route by)."""
    return f"org-admin:{path[0]}" if len(path) == 2 else f"team-admin:{path[0]}/{path[1]}"


class AdminError(Exception):
    """A change refused: `status` (400, 403, 404, 409, 422, 428) and a message naming the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    role: Role

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"


def _refuse_clear_keys(body: Any) -> None:
    """A clear provider key anywhere in the request: refused before anything else, and never repeated back."""
    if _CLEAR_KEY.search(json.dumps(body, default=str)):
        raise AdminError(422, "the request holds a clear API key (sk-...): keys are registered by fingerprint only "
                              "(`costline fingerprint KEY` prints it); the key was neither stored nor logged")


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not NAME.match(value) or value in ("unattributed", "__overflow__"):
        raise AdminError(422, f"{what}: must be {NAME_RULE}, and not a reserved name (unattributed, __overflow__)")
    return value


def _errors(err: ValidationError, where: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{where}.{loc}: {msg}" if loc else f"{where}: {msg}")
    return "; ".join(parts)


def _budget(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        return Budget.model_validate(value).model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    except ValidationError as err:
        raise AdminError(422, _errors(err, "budget")) from None


def _models(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        rules = _MODELS.validate_python(value)
    except ValidationError as err:
        raise AdminError(422, _errors(err, "models")) from None
    return {provider: rule.model_dump(mode="json", exclude_none=True) for provider, rule in rules.items()}


class Administration:
    """The overlay of one baseline and one store, and the changes made to it. `merged()` is what every processor
    runs; `on_change` is told each time it is made again (a change here, another processor's, a new baseline)."""

    def __init__(self, baseline: CostlineConfig, store: AdminStore, *, clock: Callable[[], datetime]) -> None:
        self._baseline = baseline
        self._store = store
        self._clock = clock
        self._on_change: Callable[[Merged], None] | None = None
        # A change (an API thread) and a refresh (the service's `Refresher`) may run at once: one at a time.
        self._lock = threading.RLock()
        self._rows: list[dict[str, Any]] = store.rows()
        self._merged = merge(baseline, self._rows)
        self._last_id = max((row["id"] for row in self._rows), default=0)

    def on_change(self, listener: Callable[[Merged], None]) -> None:
        """`listener` is told each new merged config (the service swaps it into the pipeline and the API)."""
        self._on_change = listener

    def merged(self) -> Merged:
        return self._merged

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def set_baseline(self, baseline: CostlineConfig) -> Merged:
        """A reloaded YAML file: the same changes laid over it (a reload never drops them). `ConfigError` when the
        new baseline is invalid (the running one stays)."""
        with self._lock:
            self._baseline = baseline
            return self._remerge()

    def refresh(self) -> bool:
        """Read the changes other processors stored; True when there were any (the merged config was made again)."""
        with self._lock:
            new = self._store.rows(after_id=self._last_id)
            if not new:
                return False
            self._rows.extend(new)
            self._last_id = max(row["id"] for row in new)
            self._remerge()
            return True

    def tick(self) -> None:
        """What the service's `Refresher` runs: other processors' changes, then the approvals that expired."""
        self.refresh()
        self.expire()

    def _remerge(self) -> Merged:
        self._merged = merge(self._baseline, self._rows)
        if self._on_change is not None:
            self._on_change(self._merged)
        return self._merged

    # -- a change ------------------------------------------------------------------------------------------------

    def change(self, actor: Actor, kind: str, body: Mapping[str, Any], if_match: str | None) -> dict[str, Any]:
        """Check and store one change; the object's new `{object, version, state}`. `AdminError` when refused."""
        with self._lock:
            return self._change(actor, kind, body, if_match)

    def _change(self, actor: Actor, kind: str, body: Mapping[str, Any], if_match: str | None) -> dict[str, Any]:
        _refuse_clear_keys(body)
        if not isinstance(body, Mapping):
            raise AdminError(400, "the body must be a JSON object")
        self.refresh()
        if kind == "approval":
            return self._approval(actor, body, if_match)
        merged = self._merged
        action = body.get("action")
        if action not in ACTIONS:
            raise AdminError(400, f"action: must be one of {', '.join(ACTIONS)}")
        if kind not in FIELDS:
            raise AdminError(404, f"no such kind of object {kind!r}")
        known = set(FIELDS[kind]) | {"action", "new_name", *([PARENT_KIND[kind]] if kind in PARENT_KIND else [])}
        unknown = sorted(set(body) - known)
        if unknown:
            raise AdminError(422, f"{unknown[0]}: unknown key for a {kind} (keys: {', '.join(sorted(known))})")
        if action == "create":
            oid, before, version = self._new_object(merged, kind, body)
        else:
            oid = self._existing(merged, kind, body)
            before = self._state(merged, oid)
            version = merged.version(oid)
            self._check_version(oid, version, if_match)
        path = self._path_of(merged, kind, oid, body)
        if not actor.role.may_change(path):
            raise AdminError(403, f"scope {scope_text(path)} is not within this token's scope "
                                  f"({actor.role.describe_scope()}, role {actor.role.kind}); a {kind} is changed "
                                  "from a level above it")
        state = self._new_state(merged, kind, action, body, before, path, actor)
        if action == "retire":
            self._check_retire(merged, kind, oid)
        else:
            self._check_bounds(merged, kind, oid, state, path)
        try:
            after = merge(self._baseline, self._rows, extra={"object": oid, "state": state,
                                                              "create": action == "create"})
        except ConfigError as err:
            raise AdminError(422, f"the merged config would be invalid: {err}") from None
        if action != "retire" and kind == "token":
            self._check_token_scope(actor, after, state)
        return self._store_change(actor, oid, version, path, action, before, state)

    # -- approvals -----------------------------------------------------------------------------------------------

    def _approval(self, actor: Actor, body: Mapping[str, Any], if_match: str | None) -> dict[str, Any]:
        """`request` (a team admin for the team, a member for themselves when the rule allows), `approve` with an
        expiry or `deny` (an admin one level above the scope)."""
        merged = self._merged
        action = body.get("action")
        if action not in APPROVAL_ACTIONS:
            raise AdminError(400, f"action: an approval is {', '.join(APPROVAL_ACTIONS)}")
        unknown = sorted(set(body) - {"action", "scope", "provider", "model", "reason", "expires"})
        if unknown:
            raise AdminError(422, f"{unknown[0]}: unknown key for an approval")
        scope, provider, model = body.get("scope"), body.get("provider"), body.get("model")
        if not all(isinstance(v, str) and v for v in (scope, provider, model)):
            raise AdminError(422, "scope, provider and model are required (scope: <org>/<team> or "
                                  "<org>/<team>/<user>)")
        path = tuple(scope.split("/"))
        kind = {2: "team", 3: "user"}.get(len(path))
        oid_of = merged.find(kind, path[-1]) if kind else None
        if oid_of is None or merged.path(oid_of) != path:
            raise AdminError(404, f"scope: no {kind or 'team or user'} {scope}")
        rule, pattern = self._rule_for(merged, path, provider, model)
        oid = object_id("approval", {"scope": scope, "provider": rule.provider, "model": pattern})
        current = dict(merged.latest.get(oid) or {})
        now = self._clock()
        version = merged.version(oid)
        if action == "request":
            asker = actor.role
            member_for_self = (asker.kind == "member" and asker.scope == path and rule.members_may_request)
            if not (member_for_self or (asker.holds(path) and asker.kind in ("team-admin", "org-admin",
                                                                              "system-admin"))):
                raise AdminError(403, f"scope {scope_text(path)}: a {asker.kind} ({asker.describe_scope()}) may not "
                                      "request for it (team admins request for their team; members for themselves "
                                      "when the rule says members_may_request)")
            reason = body.get("reason")
            if not isinstance(reason, str) or not reason.strip():
                raise AdminError(422, "reason: required (why the scope needs the model)")
            if current.get("status") == "requested":
                raise AdminError(409, f"{oid} is requested already (version {version})")
            if current.get("status") == "approved" and _instant(current["expires"]) > now:
                raise AdminError(409, f"{oid} is approved until {current['expires']}")
            state = {"scope": scope, "provider": rule.provider, "model": pattern, "requested_model": model,
                     "reason": reason.strip(), "status": "requested", "requested_by": str(actor),
                     "approver": approver_of(path)}
        else:
            self._check_version(oid, version, if_match)
            if current.get("status") != "requested":
                raise AdminError(409, f"{oid} is not waiting for a decision (status {current.get('status', 'none')})")
            if not actor.role.may_change(path):
                raise AdminError(403, f"scope {scope_text(path)}: decided by an admin one level above it "
                                      f"({approver_of(path)} or above), not by this token "
                                      f"({actor.role.describe_scope()}, role {actor.role.kind})")
            state = {**current, "status": "approved" if action == "approve" else "denied",
                     "approved_by" if action == "approve" else "denied_by": str(actor)}
            if action == "approve":
                if not body.get("expires"):
                    raise AdminError(422, "expires: an approval needs an expiry (ISO datetime)")
                try:
                    expires = _instant(str(body["expires"]))
                except ValueError:
                    raise AdminError(422, f"expires: {body['expires']!r} is not an ISO datetime") from None
                if expires <= now:
                    raise AdminError(422, f"expires: {expires.isoformat()} is in the past")
                state["expires"] = expires.isoformat()
        return self._store_change(actor, oid, version, path, action, current or None, state)

    @staticmethod
    def _rule_for(merged: Merged, path: tuple[str, ...], provider: str, model: str) -> tuple[LevelRule, str]:
        policy = ModelPolicy(merged.config)
        for rule in policy.chain(*path):
            if rule.provider in (provider, "*"):
                pattern = rule.on_approval_pattern(model)
                if pattern is not None:
                    return rule, pattern
        raise AdminError(422, f"no rule allows {provider}/{model} on approval for {scope_text(path)}: only a "
                              "model a rule lists under on_approval can be requested")

    def _store_change(self, actor: Actor, oid: str, version: int, path: tuple[str, ...], action: str,
                      before: dict[str, Any] | None, state: dict[str, Any]) -> dict[str, Any]:
        row = {"object": oid, "version": version + 1, "path": "/".join(path), "action": action, "actor": str(actor),
               "at": int(self._clock().timestamp() * 1000), "before": json.dumps(before) if before else None,
               "after": json.dumps(state)}
        try:
            row["id"] = self._store.append(row)
        except VersionConflict:
            raise AdminError(409, f"{oid} was changed by someone else meanwhile (version {version} is no longer "
                                  "current): read it again and retry") from None
        self._rows.append(row)
        self._last_id = max(self._last_id, row["id"])
        self._remerge()
        return {"object": oid, "version": version + 1, "action": action, "state": state}

    def expire(self) -> int:
        """Record the approvals that have expired (one `expire` row each, in the audit log): the row's version is
        unique, so of several processors noticing at once one writes it. Returns how many this one wrote."""
        now, written = self._clock(), 0
        with self._lock:
            for oid, state in list(self._merged.latest.items()):
                if (oid.startswith("approval:") and state.get("status") == "approved"
                        and _instant(state["expires"]) <= now):
                    path = tuple(state["scope"].split("/"))
                    try:
                        self._store_change(Actor("costline", _EXPIRY), oid, self._merged.version(oid), path,
                                           "expire", state, {**state, "status": "expired"})
                        written += 1
                    except AdminError:
                        self.refresh()  # another processor wrote it first
        return written

    def _new_object(self, merged: Merged, kind: str, body: Mapping[str, Any]) -> tuple[str, dict | None, int]:
        name = _name(body.get("name"), "name")
        if kind == "key":
            fingerprint = body.get("fingerprint")
            if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
                raise AdminError(422, "fingerprint: must be 16 lowercase hex characters (`costline fingerprint KEY` "
                                      "prints it)")
            oid = object_id("key", {"fingerprint": fingerprint})
        else:
            oid = object_id(kind, {"name": name})
        if oid in merged.objects:
            raise AdminError(409, f"{kind} {name!r} exists already (version {merged.version(oid)})")
        clash = merged.find(kind, name) if kind in ("org", "team", "user", "project", "token") else None
        if clash is not None:
            raise AdminError(409, f"{kind} {name!r} exists already (as {clash})")
        previous = merged.latest.get(oid)
        if previous is not None and not previous.get("retired"):
            raise AdminError(409, f"{oid} was renamed to {previous.get('name')!r}; its first name cannot be taken "
                                  "again")
        return oid, previous, merged.version(oid)

    @staticmethod
    def _existing(merged: Merged, kind: str, body: Mapping[str, Any]) -> str:
        name = body.get("fingerprint") if kind == "key" and body.get("fingerprint") else body.get("name")
        if not isinstance(name, str) or not name:
            raise AdminError(422, "name: required (the object's current name; a key's fingerprint will do)")
        oid = merged.find(kind, name)
        if oid is None:
            retired = any(k.partition(":")[0] == kind and s.get("name") == name and s.get("retired")
                          for k, s in merged.latest.items())
            raise AdminError(404 if not retired else 410, f"{kind} {name!r} is retired" if retired
                             else f"no {kind} named {name!r}")
        return oid

    @staticmethod
    def _check_version(oid: str, version: int, if_match: str | None) -> None:
        if if_match is None:
            raise AdminError(428, f"If-Match is required to change {oid}: send the version you read (now "
                                  f"\"{version}\"), so that a change made meanwhile is not overwritten")
        if if_match.strip().strip('"').removeprefix("W/").strip('"') != str(version):
            raise AdminError(409, f"{oid} is at version {version}, not {if_match}: it was changed meanwhile; read it "
                                  "again and retry")

    @staticmethod
    def _state(merged: Merged, oid: str) -> dict[str, Any]:
        entry = merged.objects[oid]
        state = {name: entry.node[name] for name in FIELDS[entry.kind] if entry.node.get(name) is not None}
        if entry.parent:
            state["parent"] = entry.parent
        return state

    @staticmethod
    def _path_of(merged: Merged, kind: str, oid: str, body: Mapping[str, Any]) -> tuple[str, ...]:
        if oid in merged.objects:
            return merged.path(oid)
        name = body["name"]
        if kind == "project":
            return (f"project:{name}",)
        if kind == "org":
            return (name,)
        if kind == "token":
            try:
                role = Role.parse(str(body.get("role") or ""))
            except UnknownRole as err:
                raise AdminError(422, str(err)) from None
            return role.scope if role.kind in ("org-admin", "team-admin", "member", "team") else ()
        parent_kind = PARENT_KIND[kind]
        parent_name = body.get(parent_kind)
        parent = merged.find(parent_kind, parent_name) if isinstance(parent_name, str) else None
        if parent is None:
            raise AdminError(404 if parent_name else 422, f"{parent_kind}: no {parent_kind} named {parent_name!r}"
                             if parent_name else f"{parent_kind}: required (the {kind}'s {parent_kind})")
        return (*merged.path(parent), name)

    def _new_state(self, merged: Merged, kind: str, action: str, body: Mapping[str, Any],
                   before: dict[str, Any] | None, path: tuple[str, ...], actor: Actor) -> dict[str, Any]:
        if action == "retire":
            return {**(before or {}), "retired": True, "path": list(path)}
        state = dict(before or {}) if action != "create" else {}
        state.pop("retired", None)
        state.pop("path", None)
        if action == "create":
            state["name"] = body["name"]
            if kind in PARENT_KIND:
                state["parent"] = merged.find(PARENT_KIND[kind], body[PARENT_KIND[kind]])
        if action == "rename":
            state["name"] = _name(body.get("new_name"), "new_name")
            clash = merged.find(kind, state["name"]) if kind != "key" else None
            if clash is not None:
                raise AdminError(409, f"{kind} {state['name']!r} exists already")
            return state
        if "budget" in body:
            state["budget"] = _budget(body["budget"])
        if "models" in body:
            state["models"] = _models(body["models"])
        if kind == "key":
            state["fingerprint"] = state.get("fingerprint") or body.get("fingerprint")
        if kind == "token":
            self._token_fields(state, body, action)
        return {k: v for k, v in state.items() if v is not None}

    def _token_fields(self, state: dict[str, Any], body: Mapping[str, Any], action: str) -> None:
        if action == "create" or "sha256" in body:
            sha = body.get("sha256")
            if not isinstance(sha, str) or not _TOKEN_HASH.match(sha):
                raise AdminError(422, "sha256: must be 'sha256:' and 64 lowercase hex characters (`costline "
                                      "hash-token` prints it); the token itself is never sent")
            state["sha256"] = sha
        if action == "create" or "role" in body:
            try:
                state["role"] = str(Role.parse(str(body.get("role") or "")))
            except UnknownRole as err:
                raise AdminError(422, str(err)) from None
        if "user" in body:
            state["user"] = body["user"]
        if "expires" in body and body["expires"] is not None:
            try:
                expires = datetime.fromisoformat(str(body["expires"]).replace("Z", "+00:00"))
            except ValueError:
                raise AdminError(422, f"expires: {body['expires']!r} is not an ISO datetime") from None
            expires = expires if expires.tzinfo else expires.replace(tzinfo=timezone.utc)
            if expires <= self._clock():
                raise AdminError(422, f"expires: {expires.isoformat()} is in the past")
            state["expires"] = expires.isoformat()

    @staticmethod
    def _check_token_scope(actor: Actor, after: Merged, state: Mapping[str, Any]) -> None:
        user = state.get("user")
        if user is None:
            return
        uid = after.find("user", user)
        if uid is None or not actor.role.may_change(after.path(uid)) and actor.role.kind != "system-admin":
            raise AdminError(403, f"user {user!r} is not within this token's scope ({actor.role.describe_scope()})")

    @staticmethod
    def _check_retire(merged: Merged, kind: str, oid: str) -> None:
        child = CHILDREN.get(kind)
        children = merged.objects[oid].node.get(child or "", []) if child else []
        if children:
            names = ", ".join(c["name"] for c in children)
            raise AdminError(422, f"{kind} {merged.objects[oid].node['name']} still has {child} ({names}): retire "
                                  "them first")

    @staticmethod
    def _check_bounds(merged: Merged, kind: str, oid: str, state: Mapping[str, Any], path: tuple[str, ...]) -> None:
        """A budget within every budget above it (per period) and above every budget below it; no model allowed
        that a level above refuses."""
        ancestors: list[tuple[str, dict[str, Any]]] = []
        parent = state.get("parent")
        while parent:
            entry = merged.objects[parent]
            ancestors.append((f"{entry.kind} {'/'.join(merged.path(parent))}", entry.node))
            parent = entry.parent
        budget = Budget.model_validate(state["budget"]) if state.get("budget") else None
        if budget is not None:
            for period, value in budget.periods():
                for level, node in ancestors:
                    if node.get("budget"):
                        for their_period, limit in Budget.model_validate(node["budget"]).periods():
                            if their_period == period and value > limit:
                                raise AdminError(422, f"budget: {period} {value} USD exceeds the {period} budget of "
                                                      f"{level} ({limit} USD); a budget stays within the level "
                                                      "above it")
            below = merged.objects[oid].node.get(CHILDREN.get(kind, ""), []) if oid in merged.objects else []
            for child in below:
                if child.get("budget"):
                    for their_period, theirs in Budget.model_validate(child["budget"]).periods():
                        for period, value in budget.periods():
                            if their_period == period and theirs > value:
                                raise AdminError(422, f"budget: {period} {value} USD is below the {period} budget "
                                                      f"of {child['name']} ({theirs} USD) under it; lower theirs "
                                                      "first")
        for provider, rule in (state.get("models") or {}).items():
            for pattern in rule.get("allow") or []:
                for level, node in ancestors:
                    for their_provider, theirs in (node.get("models") or {}).items():
                        if their_provider not in (provider, "*") and provider != "*":
                            continue
                        refused = LevelRule.of(level, their_provider, ModelRule.model_validate(theirs)).refuses(
                            pattern)
                        if refused is not None:
                            raise AdminError(422, f"models.{provider}.allow: {pattern!r} is refused by the rule "
                                                  f"{refused}; a level cannot allow what the level above refuses")


def describe(merged: Merged) -> dict[str, Any]:
    """The merged state as `GET /api/v1/admin/state` answers it: every current object with its path and version
    (0: as the YAML has it), then the stored changes that no longer apply."""
    objects = []
    for oid, entry in merged.objects.items():
        fields = {name: entry.node[name] for name in FIELDS[entry.kind] if entry.node.get(name) is not None}
        fields.pop("sha256", None)  # a token's hash is no one's business but the export's
        objects.append({"object": oid, "kind": entry.kind, "path": list(merged.path(oid)), "version": entry.version,
                        "parent": entry.parent, **fields})
    for oid, state in merged.latest.items():
        if oid.startswith("approval:") and oid not in merged.objects:  # requested, denied or expired
            objects.append({"object": oid, "kind": "approval", "path": state["scope"].split("/"),
                            "version": merged.version(oid), "parent": None, **state})
        elif oid.startswith("approval:"):
            objects[[o["object"] for o in objects].index(oid)].update(state)
    return {"objects": objects, "conflicts": list(merged.conflicts)}


def audit_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored changes as the audit log shows them: who, what, before, after, when (ISO, UTC)."""
    out = []
    for row in rows:
        before = json.loads(row["before"]) if row.get("before") else None
        after = json.loads(row["after"])
        for state in (before, after):
            if state:
                state.pop("sha256", None)
        out.append({"id": row["id"], "at": datetime.fromtimestamp(row["at"] / 1000, timezone.utc).isoformat(),
                    "actor": row["actor"], "action": row["action"], "object": row["object"],
                    "version": row["version"], "path": row["path"], "before": before, "after": after})
    return out
