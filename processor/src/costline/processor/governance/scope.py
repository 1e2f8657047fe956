"""Roles and their scopes: who a token is, and how far down the org chart it reaches.

A scope is a path from the top of the org chart: `()` is everything, `("acme",)` the org acme, `("acme", "search")`
its team search, `("acme", "search", "bob")` the user bob. Keys sit below their user; projects, which belong to no
org, sit at `("project:<name>",)`, so only the system admin's scope holds them. A token holds every object whose path
starts with its scope. It may *change* an object only from a level above it (the object's path is strictly longer
than the token's scope) — a team admin manages the team's users and keys but not the team itself (its budget is the
org admin's) — except the system admin, who may change anything.
"""

from __future__ import annotations

from dataclasses import dataclass

SYSTEM_ADMIN = "system-admin"
ORG_ADMIN = "org-admin"
TEAM_ADMIN = "team-admin"
MEMBER = "member"
FINANCE = "finance"
GUARD = "guard"
METRICS = "metrics"
TEAM_VIEWER = "team"
"""The earlier release's `team:<org>/<team>` role: reads that team, changes nothing (kept so that existing configs
keep working)."""
LEGACY = {"admin": SYSTEM_ADMIN}
"""Earlier role names and the role each is now."""
SCOPED_DEPTH = {ORG_ADMIN: 1, TEAM_ADMIN: 2, TEAM_VIEWER: 2, MEMBER: 3}
"""Roles that carry a scope, and how many names it has (`org-admin:acme`, `team-admin:acme/search`, ...)."""


class UnknownRole(ValueError):
    """Text that names no role (the message says which roles there are)."""


@dataclass(frozen=True, slots=True)
class Role:
    kind: str
    """One of the role names above (an earlier name already mapped)."""
    scope: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Role:
        kind, _, rest = text.partition(":")
        kind = LEGACY.get(kind, kind)
        parts = tuple(rest.split("/")) if rest else ()
        if kind in SCOPED_DEPTH and len(parts) == SCOPED_DEPTH[kind] and all(parts):
            return cls(kind, parts)
        if kind in (SYSTEM_ADMIN, FINANCE, GUARD, METRICS) and not parts:
            return cls(kind)
        raise UnknownRole(f"role {text!r} is not a role: roles are system-admin, org-admin:<org>, "
                          "team-admin:<org>/<team>, member:<org>/<team>/<user>, finance, guard, metrics and "
                          "team:<org>/<team> (read-only)")

    def __str__(self) -> str:
        return f"{self.kind}:{'/'.join(self.scope)}" if self.kind in SCOPED_DEPTH else self.kind

    @property
    def reads_everything(self) -> bool:
        return self.kind in (SYSTEM_ADMIN, FINANCE)

    def holds(self, path: tuple[str, ...]) -> bool:
        """The object at `path` is in this role's scope (reading it is allowed where the route allows the role)."""
        if self.reads_everything:
            return True
        if self.kind not in SCOPED_DEPTH:
            return False
        return path[: len(self.scope)] == self.scope

    def may_change(self, path: tuple[str, ...]) -> bool:
        """This role may create, change or retire the object at `path`: from a level above it, within its scope."""
        if self.kind == SYSTEM_ADMIN:
            return True
        if self.kind not in (ORG_ADMIN, TEAM_ADMIN, MEMBER):
            return False
        return len(path) > len(self.scope) and path[: len(self.scope)] == self.scope

    def describe_scope(self) -> str:
        return scope_text(self.scope) if self.kind in SCOPED_DEPTH else ("everything" if self.reads_everything
                                                                          else "none")


def scope_text(path: tuple[str, ...]) -> str:
    """A path in words, as errors name it: `org acme`, `team acme/search`, `user acme/search/bob`."""
    if not path:
        return "everything"
    if path[0].startswith("project:"):
        return f"project {path[0].removeprefix('project:')}"
    level = ("org", "team", "user", "key")[min(len(path), 4) - 1]
    return f"{level} {'/'.join(path)}"
