"""Generated checker source -> a loaded module -> a Checker the engine decides lines with.

Only the runtime is needed here (no parser, compiler, lark or jinja2), so that a process that is given
generated source - a Spark worker, say - can load and run it on its own.
"""
from __future__ import annotations

import linecache
import types
from datetime import date
from typing import Callable, Iterable

from payrule.runtime import API_VERSION, RANK

__all__ = ["load_module", "Checker", "Versions", "route", "route_error"]


def load_module(text: str, model_id: str) -> types.ModuleType:
    """Execute generated source in a fresh module (never in shared globals); tracebacks show its lines."""
    filename = f"<payrule {model_id}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    module = types.ModuleType(f"payrule_generated_{model_id.replace('-', '_')}")
    module.__file__ = filename
    exec(compile(text, filename, "exec"), module.__dict__)
    if module.RUNTIME_API != API_VERSION:  # pragma: no cover - modules compiled by another payrule
        raise RuntimeError(f"{model_id} was compiled for runtime API {module.RUNTIME_API}, this is {API_VERSION}")
    return module


class Checker:
    """A loaded policy module, ready to decide lines. It may serve several runs at once (threads): what it
    memoises - the rules for a code, whether a code is tracked - never changes, and holds at most MEMO codes."""

    MEMO = 65536

    def __init__(self, module: types.ModuleType):
        self.module = module
        self.policy_id: str = module.POLICY_ID
        self.payer: str | None = module.PAYER
        self.rules = module.RULES
        self.claim_rules = tuple(r for r in self.rules if r.scope == "claim")
        self.same_day_sets = module.SAME_DAY_SETS
        self.earlier_sets = module.EARLIER_SETS
        self.session_sets = module.SESSION_SETS
        self.grouped_sets = module.GROUPED_SETS
        self.aliases: tuple[str, ...] = module.ALIASES
        # A version's dates of service as ordinals (first, last), or None: in force always.
        self.version: tuple[int, int] | None = module.VERSION
        self._by_code: dict[str, tuple] = {}
        self._tracked: dict[str, bool] = {}
        self.plans: dict[str, tuple[Callable, bool]] = {}  # code -> plan(code), memoised
        self.claim_plans: dict[str, tuple] = {}  # code -> claim_plan(code), memoised
        self._fused: dict[tuple[int, ...], Callable] = module.PLANS  # rule positions -> their fused function
        self._tracked_sets = (tuple(self.earlier_sets.values()) + tuple(self.session_sets.values())
                              + tuple(g[0] for g in self.grouped_sets.values()))

    versions: tuple["Checker", ...] = ()  # a payer with one policy has no versions

    def at(self, day: int) -> "Checker | None":
        """The checker for a line dated `day` (an ordinal): this one, if it is in force then."""
        v = self.version
        return self if v is None or v[0] <= day <= v[1] else None

    def rules_for(self, code: str) -> tuple:
        """The line rules whose guard admits `code`, in rule order."""
        hit = self._by_code.get(code)
        if hit is None:
            hit = tuple(r for r in self.rules if r.scope == "line" and (r.guard is None or code in r.guard))
            if len(self._by_code) < self.MEMO:
                self._by_code[code] = hit
        return hit

    def plan(self, code: str) -> tuple[Callable, bool]:
        """What deciding a line with this code takes, memoised in `plans`: a function `run(line, group)`
        that runs its line rules in rule order and returns (reasons [(Rule, message), ...] or None, the
        highest rank of the outcomes that fired), and whether the line, once allowed, is recorded
        (`tracks`). The engine's one lookup a line. `run` is the module's fused plan for exactly these
        rules (PLANS) when it has one, else a loop over the rules' own functions: the same answer."""
        hit = self.plans.get(code)
        if hit is None:
            rules = self.rules
            positions = tuple(i for i, r in enumerate(rules) if r.scope == "line" and (r.guard is None or code in r.guard))
            run = self._fused.get(positions) or _one_by_one(tuple((rules[i].fn, rules[i], RANK[rules[i].outcome])
                                                                  for i in positions))
            hit = (run, self.tracks(code))
            if len(self.plans) < self.MEMO:
                self.plans[code] = hit
        return hit

    def claim_plan(self, code: str) -> tuple:
        """The claim rules whose guard admits `code`, in rule order; memoised in `claim_plans`."""
        hit = self.claim_plans.get(code)
        if hit is None:
            hit = tuple(r for r in self.claim_rules if r.guard is None or code in r.guard)
            if len(self.claim_plans) < self.MEMO:
                self.claim_plans[code] = hit
        return hit

    def tracks(self, code: str) -> bool:
        """Whether a line with this code, once allowed, counts toward `earlier` or session limits."""
        hit = self._tracked.get(code)
        if hit is None:
            hit = any(code in s for s in self._tracked_sets)
            if len(self._tracked) < self.MEMO:
                self._tracked[code] = hit
        return hit


def _one_by_one(rules: tuple) -> Callable:
    """A plan's `run` for line rules the module has no fused function for: each rule's own function in turn."""
    if not rules:
        return _no_rules

    def run(ln, g):
        reasons = None  # no list is made for a line no rule fires on
        rank = 0
        for fn, rule, r in rules:
            msg = fn(ln, g)
            if msg is not None:
                if reasons is None:
                    reasons = [(rule, msg)]
                else:
                    reasons.append((rule, msg))
                if r > rank:
                    rank = r
        return reasons, rank

    return run


def _no_rules(ln, g):
    return None, 0


class Versions:
    """The versions of one payer's policy, each a Checker in force over its own dates of service (they
    do not overlap: the checker refuses policies that would). A line is decided by the version in force
    on its date; every version counts every line in its history (see engine.decide_group)."""

    version = None  # the versions have dates; the payer's policy as a whole has none

    def __init__(self, checkers: list[Checker]):
        self.versions = tuple(sorted(checkers, key=lambda c: c.version[0] if c.version else 0))
        self.payer = self.versions[0].payer
        self.policy_id = self.versions[-1].policy_id
        self.rules = tuple(r for c in self.versions for r in c.rules)

    def at(self, day: int) -> Checker | None:
        for c in self.versions:
            if c.at(day) is not None:
                return c
        return None


def route(checkers: "Iterable[Checker]") -> "dict[str, Checker | Versions]":
    """Payer name -> what decides its claims: the payer id and every alias of a policy route to its checker;
    a payer with several policies (versions by date of service) routes to their Versions."""
    by_name: dict[str, list[Checker]] = {}
    for checker in checkers:
        if checker.payer is not None:
            for name in (checker.payer, *checker.aliases):
                by_name.setdefault(name, []).append(checker)
    return {name: found[0] if len(found) == 1 and found[0].version is None else Versions(found)
            for name, found in by_name.items()}


def route_error(checker: "Checker | Versions", claim) -> str | None:
    """Why a routed claim cannot be decided: a line dated when no version of its payer's policy is in
    force. None when every line has a policy."""
    for ln in claim.lines:
        if checker.at(ln.date) is None:
            return (f"no policy for payer {claim.payer!r} in force on {date.fromordinal(ln.date).isoformat()} "
                    f"(line {ln.no})")
    return None
