"""When one rule fires whenever another does: the pair checks behind lint's PR306 (shadowed) and PR311
(overlapping), in time near linear in the rules of a policy (issue 16), not pair by pair.

A rule's condition is read as its `and` items. Rule r1 is *implied* by r2 when each item of r1 is one of
r2's, or is a session limit or spacing that one of r2's implies (more than 6 sessions are more than 4;
within 12 months holds within 6). Only a limit implies a limit, and only of its *kind* (the same set,
grouping, unit and kind of window); a spacing likewise. So:

- rules are first sorted by what must match exactly (their other items, their kind, scope, action,
  `unless` and dates), and looked up by the rarest of those keys (`ByRarest`);
- among the rules of one kind whose only limit or spacing is that one item, "implied" is a quadrant of
  two numbers - a limit's count at most r2's and its window at least r2's; a spacing's days at least
  r2's - and the first rule (in policy order) in a quadrant is found by a sweep with a Fenwick tree of
  minimums, for every rule at once;
- the rest (a rule with no limit or spacing, or several) is compared with the candidates the index
  gives, as the plain definition says.
"""
from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from typing import Callable, Iterable, Sequence

from payrule.lang import nodes
from payrule.lang.checker import field_name

__all__ = ["STRENGTH", "ByRarest", "covers", "first_overlapping", "implied", "item_implies", "unique"]

STRENGTH = {"review": 1, "deny": 2}
_PARAM = (nodes.SessionLimit, nodes.Spacing)
_NONE = 1 << 62  # no rule found: above every index


def implied(weak: Sequence[nodes.Cond], strong: Sequence[nodes.Cond]) -> str | None:
    """Whether every `and` item of a rule (`weak`) holds whenever another's (`strong`) all do: each is
    among them, or is a session limit or spacing that one of them implies (the first, in order). Returns
    why (the limits or spacings compared; "" when every item is among them), or None."""
    mine = set(strong)
    why = []
    for c in weak:
        if c in mine:
            continue
        reason = next((w for o in strong if (w := item_implies(o, c)) is not None), None)
        if reason is None:
            return None
        why.append(reason)
    return "; ".join(why)


def item_implies(strong: nodes.Cond, weak: nodes.Cond) -> str | None:
    """Why `strong` holding means `weak` holds, for two session limits or two spacings of one set; or None."""
    if isinstance(strong, nodes.SessionLimit) and isinstance(weak, nodes.SessionLimit):
        if _kind(strong) != _kind(weak):
            return None
        ws, ww = strong.window, weak.window
        if strong.count.value < weak.count.value or (ws.size is not None and ww.size is not None and ws.size.value > ww.size.value):
            return None
        return (f"more than {strong.count.value} {strong.set.value} sessions {_window(ws)} are always more than "
                f"{weak.count.value} {_window(ww)}")
    if isinstance(strong, nodes.Spacing) and isinstance(weak, nodes.Spacing):
        if _kind(strong) != _kind(weak) or strong.days.value > weak.days.value:
            return None
        return (f"less than {strong.days.value} {strong.unit} after the last {strong.set.value} session is always less than "
                f"{weak.days.value} {weak.unit}")
    return None


def covers(r1: nodes.Rule, r2: nodes.Rule) -> bool:
    """Whether r1 is in force whenever r2 is and has no `unless` of its own that r2 lacks."""
    if r1.unless is not None and r1.unless != r2.unless:
        return False
    if r1.start is not None and (r2.start is None or r2.start.value < r1.start.value):
        return False
    if r1.end is not None and (r2.end is None or r2.end.value > r1.end.value):
        return False
    return True


def unique(items: Iterable[nodes.Cond]) -> tuple[nodes.Cond, ...]:
    return tuple(dict.fromkeys(items))


def _by(c: nodes.SessionLimit | nodes.Spacing) -> str | None:
    return (field_name(c.by.value) or c.by.value) if c.by is not None else None


def _window(w: nodes.Window) -> str:
    return "in the calendar year" if w.size is None else f"within {w.size.value} {w.unit}"


def _kind(c: nodes.Cond) -> object:
    """What an item of one rule must be to imply it in another (item_implies): a session limit of the same
    set, grouping, unit and kind of window; a spacing of the same set, grouping and unit; else itself."""
    if isinstance(c, nodes.SessionLimit):
        return ("limit", c.set.value, _by(c), c.window.unit, c.window.size is None)
    if isinstance(c, nodes.Spacing):
        return ("spacing", c.set.value, _by(c), c.unit)
    return c


def _point(c: nodes.SessionLimit | nodes.Spacing) -> tuple[int, int]:
    """(a, b) such that item p implies item q of its kind exactly when a(q) <= a(p) and b(q) >= b(p)."""
    if isinstance(c, nodes.SessionLimit):
        return (c.count.value, c.window.size.value if c.window.size is not None else 0)
    return (0, c.days.value)


class ByRarest:
    """Rules indexed by the rarest of their keys, for the checks that need every key of one rule among
    another's: only the rules whose rarest key is among a rule's keys can be."""

    def __init__(self, keys: Sequence[frozenset]):
        count: Counter = Counter(k for ks in keys for k in ks)
        self.by: dict[object, list[int]] = {}
        self.always: list[int] = []  # no keys at all: among anything's
        for i, ks in enumerate(keys):
            if ks:
                self.by.setdefault(min(ks, key=count.__getitem__), []).append(i)
            else:
                self.always.append(i)

    def candidates(self, keys: Iterable[object], before: int | None = None) -> list[int]:
        """The rules whose every key may be among `keys`, in order (those before `before`)."""
        found = set(self.always)
        for k in keys:
            found.update(self.by.get(k, ()))
        return sorted(i for i in found if before is None or i < before)


class _Quadrant:
    """Rules of one kind, one limit or spacing each, that agree in all else a pair check compares: for a
    point (a, b), the first rule (least index) with a' <= a and b' >= b, the rules exactly at (a, b) left
    out unless `keep` says otherwise. Queries are collected, then answered in one sweep."""

    def __init__(self) -> None:
        self.members: list[tuple[int, int, int]] = []  # (a, b, index)
        self.queries: list[tuple[int, int, int, nodes.Cond, bool]] = []  # (a, b, target, its item, exclude equal)

    def answer(self, keep: Callable[[int, nodes.Cond], bool]) -> Iterable[tuple[int, int]]:
        """(target, first index) per query that has one; at the query's own point, only members `keep`
        accepts (given the member and the query's item) count."""
        bs = sorted({b for _, b, _ in self.members}, reverse=True)
        rank = {b: r for r, b in enumerate(bs)}
        negated = [-x for x in bs]  # ascending
        tree = [_NONE] * (len(bs) + 1)  # Fenwick tree of minimum index, over b descending

        def add(b: int, i: int) -> None:
            r = rank[b] + 1
            while r <= len(bs):
                tree[r] = min(tree[r], i)
                r += r & -r

        def least(b: int) -> int:  # least index among members added with b' >= b
            r = bisect_right(negated, -b)  # how many distinct b' >= b
            out = _NONE
            while r > 0:
                out = min(out, tree[r])
                r -= r & -r
            return out

        members = sorted(self.members)
        at: dict[tuple[int, int], list[int]] = {}
        for a, b, i in members:
            at.setdefault((a, b), []).append(i)
        strictly_above: dict[int, list[tuple[int, int]]] = {}  # a -> (b, index) sorted, for a' == a and b' > b
        for a, b, i in members:
            strictly_above.setdefault(a, []).append((b, i))
        suffix_min: dict[int, list[int]] = {}
        for a, row in strictly_above.items():
            row.sort()
            mins = [_NONE] * (len(row) + 1)
            for k in range(len(row) - 1, -1, -1):
                mins[k] = min(mins[k + 1], row[k][1])
            suffix_min[a] = mins
        k = 0
        for a, b, target, item, exclude in sorted(self.queries, key=lambda q: (q[0], q[4] is False)):
            # members with a' < a (exclude) or a' <= a (not) are in the tree
            while k < len(members) and (members[k][0] < a or (not exclude and members[k][0] == a)):
                add(members[k][1], members[k][2])
                k += 1
            best = least(b)
            if exclude:
                row = strictly_above.get(a, [])
                best = min(best, suffix_min[a][bisect_right(row, (b, _NONE))] if row else _NONE)
                best = min([best, *(i for i in at.get((a, b), ()) if keep(i, item))])
            if best < _NONE:
                yield target, best


def first_overlapping(rules: Sequence[nodes.Rule], items: Sequence[tuple[nodes.Cond, ...]],
                      targets: Iterable[int]) -> dict[int, int]:
    """For each target rule r2 (an index into `rules`, whose `and` items are `items`), the first other rule
    r1 that decides at least as much in the same scope whenever r2 fires (PR311): r1 is at least as strong
    (a deny over a review), covers r2's dates and exceptions, is implied by r2, and is not merely the
    same items with the same action (PR306's case). Exactly the first r1 in order that
    `r1 is not r2 and ... implied(items[r1], items[r2])` accepts, found without comparing every pair."""
    params = [[c for c in it if isinstance(c, _PARAM)] for it in items]
    plain = [frozenset(c for c in it if not isinstance(c, _PARAM)) for it in items]
    kinds = [frozenset(map(_kind, it)) for it in items]
    # r1 with one limit or spacing: by (scope, its other items, its kind), then by what the filters read
    groups: dict[tuple, dict[tuple, _Quadrant]] = {}
    rest: list[int] = []
    for i, r in enumerate(rules):
        if len(params[i]) == 1:
            p = params[i][0]
            sub = groups.setdefault((r.scope, plain[i], _kind(p)), {})
            sub.setdefault((r.action, r.unless, r.start, r.end), _Quadrant()).members.append((*_point(p), i))
        else:
            rest.append(i)
    keys = list(groups)
    by_group = ByRarest([frozenset(plain) | {(scope, kind)} for scope, plain, kind in keys])
    by_rest = ByRarest([kinds[i] for i in rest])
    best: dict[int, int] = {}

    def offer(j: int, i: int) -> None:
        if i < best.get(j, _NONE):
            best[j] = i

    def fits(i: int, j: int) -> bool:
        r1, r2 = rules[i], rules[j]
        if i == j or r1.scope != r2.scope or STRENGTH[r1.action] < STRENGTH[r2.action] or not covers(r1, r2):
            return False
        why = implied(items[i], items[j])
        return why is not None and not (why == "" and r1.action == r2.action)

    for j in targets:
        r2 = rules[j]
        of_kind = Counter(_kind(p) for p in params[j])
        if any(n > 1 for n in of_kind.values()):  # two limits of one kind: compared plainly
            for i in range(len(rules)):
                if fits(i, j):
                    offer(j, i)
                    break
            continue
        for k in by_rest.candidates(kinds[j]):
            if fits(rest[k], j):
                offer(j, rest[k])
                break
        mine = plain[j]
        for g in by_group.candidates(mine | {(r2.scope, _kind(p)) for p in params[j]}):
            scope, their_plain, kind = keys[g]
            if scope != r2.scope or not their_plain <= mine or kind not in of_kind:
                continue
            p2 = next(p for p in params[j] if _kind(p) == kind)
            for (action, unless, start, end), quad in groups[keys[g]].items():
                first = rules[quad.members[0][2]]
                if STRENGTH[action] < STRENGTH[r2.action] or not covers(first, r2):
                    continue
                # same action: a rule whose limit is r2's own item (all items among r2's) is PR306's
                quad.queries.append((*_point(p2), j, p2, action == r2.action))
    for sub in groups.values():
        for quad in sub.values():
            if quad.queries:
                for j, i in quad.answer(lambda i, item: params[i][0] != item):
                    offer(j, i)
    return best
