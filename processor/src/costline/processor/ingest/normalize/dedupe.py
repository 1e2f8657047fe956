"""`dedupe_calls`: several spans of one batch that describe the same API call become one call.

Two instrumentations on one SDK (e.g. OpenLLMetry and Costline) each emit a span for the same call, one usually
wrapping the other. Billing both would double the cost. Two spans are the same call when

* they share an identity key (`model.call_keys`, the ledger's rule too): the same trace and `gen_ai.response.id`,
  the same usage and starts less than a second apart (a response id alone is no proof: some servers reuse them), or
* they share trace and response id, overlap in time, and one of them reports no usage (there is nothing to agree
  on) while no other span of that response overlaps it, or
* one is the parent of the other and both name the same provider and model (a wrapper span), or
* they come from different instrumentations, share provider and response id, overlap in time, and that response id
  appears at most once per instrumentation in the batch. Some peers do not make their span current (OpenLLMetry's
  Responses API span), so the other instrumentation's span lands in another trace. The once-per-source condition
  keeps non-unique ids (a fake or self-hosted provider answering every call with the same id) from merging
  distinct calls.

A parent with several such children is not a wrapper but an aggregate (an agent or workflow span summing its calls'
usage): it is dropped, its children kept, so the usage is billed once, by the calls that incurred it.

The survivor of a group is the most trustworthy span: Costline's own first, then one with usage, then the innermost.
Owner keys and the API key fingerprint it lacks are taken from the others (owner stamping may have reached only one).
"""

from __future__ import annotations

from costline.processor.model import LLMCall, call_keys


def dedupe_calls(calls: list[LLMCall]) -> list[LLMCall]:
    if len(calls) < 2 or _all_distinct(calls):
        return calls
    groups = _Groups(len(calls))
    _join_shared_keys(calls, groups)
    _join_usage_less(calls, groups)
    _join_across_traces(calls, groups)
    dropped, depth = _join_wrappers(calls, groups)
    return _survivors(calls, groups, dropped, depth)


class _Groups:
    """Union-find over the batch's positions: which calls have been found to be one call."""

    __slots__ = ("_parent",)

    def __init__(self, size: int) -> None:
        self._parent = list(range(size))

    def find(self, i: int) -> int:
        parent = self._parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self._parent[rj] = ri


def _join_shared_keys(calls: list[LLMCall], groups: _Groups) -> None:
    """A call is one already met when it shares any identity key with it (`model.call_keys`)."""
    by_key: dict[bytes, int] = {}
    for i, call in enumerate(calls):
        for key in call_keys(call):
            met = by_key.setdefault(key, i)
            if met != i:
                groups.union(met, i)


def _join_usage_less(calls: list[LLMCall], groups: _Groups) -> None:
    """A span without usage joins the one other span of its trace and response id that overlaps it in time."""
    by_response: dict[tuple[bytes, str], list[int]] = {}
    for i, call in enumerate(calls):
        if call.response_id:
            by_response.setdefault((call.trace_id, call.response_id), []).append(i)
    for members in by_response.values():
        if len(members) < 2:
            continue
        for a in members:
            if calls[a].has_usage:
                continue
            overlapping = [b for b in members if b != a and _overlap(calls[a], calls[b])]
            if len(overlapping) == 1:  # more: it could be either call, so it is neither
                groups.union(overlapping[0], a)


def _join_across_traces(calls: list[LLMCall], groups: _Groups) -> None:
    """Spans of different instrumentations sharing provider and response id join when they overlap in time, in
    whatever trace, as long as the id appears at most once per instrumentation."""
    by_response: dict[tuple[str, str], list[int]] = {}
    for i, call in enumerate(calls):
        if call.response_id:
            by_response.setdefault((call.provider, call.response_id), []).append(i)
    for members in by_response.values():
        if len(members) < 2:
            continue
        sources = [calls[i].source for i in members]
        if len(set(sources)) != len(sources):
            continue  # the id repeats within one instrumentation: not unique, not evidence of one call
        for a, b in zip(members, members[1:], strict=False):  # consecutive pairs
            if _overlap(calls[a], calls[b]):
                groups.union(a, b)


def _join_wrappers(calls: list[LLMCall], groups: _Groups) -> tuple[set[int], dict[int, int]]:
    """A parent of the same call shape with one such child is its wrapper: joined, the child one level deeper. With
    several it is an aggregate: dropped (returned), its owner keys handed to its children. Also returns, per
    position, how many wrappers it was found inside."""
    by_span: dict[tuple[bytes, bytes], int] = {}
    for i, call in enumerate(calls):
        if call.span_id:
            by_span[(call.trace_id, call.span_id)] = i
    children: dict[int, list[int]] = {}
    for i, call in enumerate(calls):
        if not call.parent_span_id:
            continue
        p = by_span.get((call.trace_id, call.parent_span_id))
        if p is not None and p != i and _same_call_shape(calls[p], call):
            children.setdefault(p, []).append(i)

    dropped: set[int] = set()
    depth: dict[int, int] = {}
    for p, kids in children.items():
        if len(kids) == 1:
            groups.union(p, kids[0])
            depth[kids[0]] = depth.get(kids[0], 0) + 1
        else:
            dropped.add(p)
            for kid in kids:
                _inherit(calls[kid], calls[p])
    return dropped, depth


def _survivors(calls: list[LLMCall], groups: _Groups, dropped: set[int], depth: dict[int, int]) -> list[LLMCall]:
    """One call per group, in the batch's order: the most trustworthy span (Costline's, then one with usage, then
    the innermost, then the first), with what it lacks taken from the others."""
    members_of: dict[int, list[int]] = {}
    for i in range(len(calls)):
        if i not in dropped:
            members_of.setdefault(groups.find(i), []).append(i)
    if len(members_of) == len(calls):
        return calls

    result: list[LLMCall] = []
    for members in members_of.values():
        if len(members) == 1:
            result.append(calls[members[0]])
            continue
        best = max(members, key=lambda i: (calls[i].source == "costline", calls[i].has_usage, depth.get(i, 0), -i))
        keeper = calls[best]
        for i in members:
            if i != best:
                _inherit(keeper, calls[i])
        result.append(keeper)
    return result


def _all_distinct(calls: list[LLMCall]) -> bool:
    """True when no rule below can join two calls: no response id repeats and no call's parent is in the batch.

    The usual batch (one instrumentation, parents that are application spans) is settled by this check alone,
    in comprehensions, instead of paying for the union-find's dictionaries and lists per call. A false "not
    distinct" only costs the full pass, which decides exactly.
    """
    response_ids = [call.response_id for call in calls if call.response_id]
    if len(set(response_ids)) != len(response_ids):
        return False
    spans = {(call.trace_id, call.span_id) for call in calls if call.span_id}
    return not any((call.trace_id, call.parent_span_id) in spans for call in calls if call.parent_span_id)


def _same_call_shape(outer: LLMCall, inner: LLMCall) -> bool:
    if outer.provider != inner.provider:
        return False
    outer_models = {outer.request_model, outer.response_model} - {None}
    inner_models = {inner.request_model, inner.response_model} - {None}
    return not outer_models or not inner_models or bool(outer_models & inner_models)


def _overlap(a: LLMCall, b: LLMCall) -> bool:
    return a.start_time_unix_nano <= b.end_time_unix_nano and b.start_time_unix_nano <= a.end_time_unix_nano


def _inherit(keeper: LLMCall, other: LLMCall) -> None:
    for key, value in other.owner.items():
        keeper.owner.setdefault(key, value)
    if keeper.api_key_fingerprint is None:
        keeper.api_key_fingerprint = other.api_key_fingerprint
