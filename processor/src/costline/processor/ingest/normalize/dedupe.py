"""`dedupe_calls`: several spans of one batch that describe the same API call become one call.

Whether a span is a call at all is decided by the span alone (`span._is_call`: agent runs, workflows, OpenLLMetry's
workflow/task/agent spans, Vercel's outer spans are never calls), never by what else its batch holds. Here, spans
that *are* calls are paired: two instrumentations on one SDK (e.g. OpenLLMetry and Costline) each emit a span for
the same call, one usually wrapping the other; billing both would double the cost. One source's spans with
different span ids are never one call (docs/sources.md, "Two spans, one call"). Two spans are the same call when

* they share an identity key (`model.call_keys`, the ledger's rule too): the same span (its ids twice in one
  request), or two sources' spans with the same trace, `gen_ai.response.id` and usage, starts less than a second
  apart and the same place among their source's such spans (`LLMCall.sibling`, numbered here first: a server that
  answers five calls with one id makes five calls of each source, paired first with first), or
* they come from different sources, share trace and response id, overlap in time, and one of them reports no usage
  (there is nothing to agree on) while no other span of that response overlaps it, or
* one is the parent of the other, they come from different sources, and both name the same provider and model (a
  wrapper span), or
* they come from different sources, share provider and response id, overlap in time, and that response id
  appears at most once per source in the batch. Some peers do not make their span current (OpenLLMetry's
  Responses API span), so the other instrumentation's span lands in another trace. The once-per-source condition
  keeps non-unique ids (a fake or self-hosted provider answering every call with the same id) from merging
  distinct calls, or
* one has no response id, the other comes from another source, and they agree on service, provider, model,
  operation and usage and start less than a second apart (OpenInference's anthropic streams: another trace, no
  id): each source's such spans are taken in start order and paired first with first (`model.call_families`, the
  usage family, is the same rule across batches).

A parent of another source with several children of its call shape (a framework's span around several SDK calls,
no rule naming it) is dropped, its children kept. It is the one decision still made per batch: no attribute tells
such a span from a call, and across batches the children's response and usage families usually meet it anyway.

The survivor of a group is the most trustworthy span: Costline's own first, then one with usage, then the innermost.
Owner keys and the API key fingerprint it lacks are taken from the others (owner stamping may have reached only one).
"""

from __future__ import annotations

from costline.processor.model import RESPONSE_WINDOW_NS, LLMCall, call_keys


def dedupe_calls(calls: list[LLMCall]) -> list[LLMCall]:
    if len(calls) < 2 or _all_distinct(calls):
        return calls
    _number_siblings(calls)
    groups = _Groups(len(calls))
    _join_shared_keys(calls, groups)
    _join_usage_less(calls, groups)
    _join_across_traces(calls, groups)
    _join_by_usage(calls, groups)
    dropped, depth = _join_wrappers(calls, groups)
    return _survivors(calls, groups, dropped, depth)


def _number_siblings(calls: list[LLMCall]) -> None:
    """`LLMCall.sibling`: each source's spans sharing trace, response id and usage, in start order, take the first
    place not taken by one of them starting within a second either side (the ledger's rule for its marks)."""
    by_family: dict[tuple, list[LLMCall]] = {}
    for call in calls:
        if call.response_id and call.trace_id:
            usage = (call.total_input_tokens, call.output_tokens) if call.has_usage else None
            by_family.setdefault((call.source, call.trace_id, call.response_id, usage), []).append(call)
    for members in by_family.values():
        if len(members) > 1:
            _number(members)


def _number(members: list[LLMCall]) -> None:
    members.sort(key=lambda c: (c.start_time_unix_nano, c.span_id))
    places: dict[int, set[int]] = {}  # second -> the places taken by spans starting then
    hints: dict[int, int] = {}  # second -> below it every place is taken (in start order, a second only fills up)
    empty: set[int] = set()
    for call in members:
        second = call.start_time_unix_nano // RESPONSE_WINDOW_NS
        before, same, after = places.get(second - 1, empty), places.setdefault(second, set()), places.get(second + 1, empty)
        place = hints.get(second, 0)
        while place in same or place in before or place in after:
            place += 1
        hints[second] = place + 1
        same.add(place)
        call.sibling = place


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
            overlapping = [b for b in members
                           if b != a and calls[b].source != calls[a].source and _overlap(calls[a], calls[b])]
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


def _join_by_usage(calls: list[LLMCall], groups: _Groups) -> None:
    """A span without a response id joins another source's span of the same service, provider, model, operation and
    usage starting less than a second apart, in whatever trace: each source's spans of such a group in start order,
    the n-th of one with the n-th of the other."""
    by_usage: dict[tuple, list[int]] = {}
    for i, call in enumerate(calls):
        if call.has_usage:
            by_usage.setdefault((call.service_name, call.provider, call.model, call.operation, call.input_tokens,
                                 call.output_tokens, call.cache_read_tokens, call.cache_write_tokens), []).append(i)
    for members in by_usage.values():
        if len(members) < 2 or all(calls[i].response_id for i in members):
            continue
        by_source: dict[str, list[int]] = {}
        for i in sorted(members, key=lambda i: calls[i].start_time_unix_nano):
            by_source.setdefault(calls[i].source, []).append(i)
        if len(by_source) < 2:
            continue
        without_id = [spans for spans in by_source.values() if not calls[spans[0]].response_id]
        for spans in without_id:
            for other in by_source.values():
                if other is spans:
                    continue
                for a, b in zip(spans, other, strict=False):
                    if abs(calls[a].start_time_unix_nano - calls[b].start_time_unix_nano) < RESPONSE_WINDOW_NS:
                        groups.union(a, b)


def _join_wrappers(calls: list[LLMCall], groups: _Groups) -> tuple[set[int], dict[int, int]]:
    """A parent of another source and the same call shape with one such child is its wrapper: joined, the child one
    level deeper. With several it is dropped (returned), its owner keys handed to its children. A parent of the same
    source is a call of its own (whether a span is a call is the span's: `span._is_call`). Also returns, per
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
        if p is not None and p != i and calls[p].source != call.source and _same_call_shape(calls[p], call):
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
    """True when no rule below can join two calls: no response id repeats, no call's parent is in the batch, and no
    call without a response id comes with calls of another source.

    The usual batch (one instrumentation, parents that are application spans) is settled by this check alone,
    in comprehensions, instead of paying for the union-find's dictionaries and lists per call. A false "not
    distinct" only costs the full pass, which decides exactly.
    """
    response_ids = [call.response_id for call in calls if call.response_id]
    if len(set(response_ids)) != len(response_ids):
        return False
    if len(response_ids) != len(calls) and len({call.source for call in calls}) > 1:
        return False  # a span without an id beside another source's spans: the usage rule may pair them
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
