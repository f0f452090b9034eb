"""Turning a `--policy` spec (e.g. `expert`, `llm`, `script:FILE`) into a policy object."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from hch.errors import PolicySpecError
from hch.run.policy import Policy
from hch.validate import unicode_problem

Factory = Callable[[str | None, Mapping[str, Any]], Policy]
"""Builds a policy from the spec's argument (the part after `:` or inside `( )`) and CLI options."""

FACTORIES: dict[str, Factory] = {}
EARLY_GUESS = "early_guess"
"""`expert(early_guess)`: the experts' older variant that guesses at once where a question shows it
needs more depth than the node has (fingerprint `expert(...)+early_guess`)."""
SPEC = re.compile(r"^(?P<name>[a-z][a-z0-9_-]*)(?:\((?P<paren>.*)\)|:(?P<colon>.+))?$", re.DOTALL)


def register(name: str) -> Callable[[Factory], Factory]:
    """Make a policy selectable as `--policy NAME`."""

    def decorate(factory: Factory) -> Factory:
        FACTORIES[name] = factory
        return factory

    return decorate


def make_policy(spec: str, options: Mapping[str, Any] | None = None) -> Policy:
    """The policy a spec names; an unknown or malformed spec is a `PolicySpecError`."""
    from hch.policies import positional

    if (problem := unicode_problem(spec)) is not None:
        raise PolicySpecError(f"the policy spec is not valid text: {problem}")
    if positional.is_positional(spec):  # e.g. root=human,else=llm (see hch/policies/positional.py)
        return positional.build(spec, lambda part: make_policy(part, options))
    match = SPEC.match(spec.strip())
    if match is None:
        raise PolicySpecError(f"malformed policy spec {spec!r}; expected NAME, NAME:ARG or NAME(ARGS)")
    name = match["name"]
    factory = FACTORIES.get(name)
    if factory is None:
        known = ", ".join(sorted(FACTORIES))
        raise PolicySpecError(f"unknown policy {name!r}; known policies: {known}")
    argument = match["paren"] if match["paren"] is not None else match["colon"]
    return factory(argument, options or {})


def as_policy(value: object) -> Policy:
    """A policy object as it is, a spec string through `make_policy`, a plain function wrapped
    (`hch.policies.callable.from_function`); anything else is a `TypeError` saying what is accepted."""
    if isinstance(value, Policy):
        return value
    if isinstance(value, str):
        return make_policy(value)
    if callable(value):
        from hch.policies.callable import from_function

        return from_function(value)
    raise TypeError(
        f"policy must be a Policy (an object with `fingerprint` and `async act(workspace)`), a spec string "
        f"such as 'expert' or 'vote(3, expert)', or a function of the workspace; not {type(value).__name__}"
    )


@register("expert")
def _expert(argument: str | None, options: Mapping[str, Any]) -> Policy:
    from hch.experts import EXPERTS, ExpertPolicy

    if not argument:
        return ExpertPolicy()
    parts = [part.strip() for part in argument.split(",") if part.strip()]
    settings = dict(part.split("=", 1) for part in parts if "=" in part)
    early_guess = EARLY_GUESS in parts  # the depth-aware variant: guesses at once where a question needs more
    names = [part for part in parts if "=" not in part and part != EARLY_GUESS]
    unknown = [n for n in names if n not in EXPERTS]
    if unknown:
        raise PolicySpecError(
            f"unknown expert {unknown[0]!r}; known experts: {', '.join(EXPERTS)} (and the variant {EARLY_GUESS})"
        )
    experts = [EXPERTS[n] for n in names] if names else None
    if not settings:
        return ExpertPolicy(experts, early_guess=early_guess)
    from hch.experts.noisy import ON, WRONG, NoisyExpertPolicy

    extra = sorted(set(settings) - {"noise", "seed", "on", "wrong", "correlation"})
    if extra:
        raise PolicySpecError(
            f"unknown expert setting {extra[0]!r}; expert(...) takes noise=P, seed=S, on=lookups|all, "
            "wrong=uniform|plausible|popular and correlation=R"
        )
    noise = _fraction(settings, "noise", "expert noise")
    correlation = _fraction(settings, "correlation", "expert correlation")
    on, wrong = settings.get("on", "lookups").strip(), settings.get("wrong", "uniform").strip()
    if on not in ON:
        raise PolicySpecError(f"expert on= must be one of {', '.join(ON)}, not {on!r}")
    if wrong not in WRONG:
        raise PolicySpecError(f"expert wrong= must be one of {', '.join(WRONG)}, not {wrong!r}")
    return NoisyExpertPolicy(
        experts, noise=noise, seed=settings.get("seed", "0").strip(), on=on,  # type: ignore[arg-type]
        wrong=wrong, correlation=correlation, early_guess=early_guess,  # type: ignore[arg-type]
    )


def _fraction(settings: Mapping[str, str], name: str, what: str) -> float:
    """A setting that must be a number between 0 and 1 (0 when absent)."""
    try:
        value = float(settings.get(name, "0"))
    except ValueError:
        raise PolicySpecError(f"{what} must be a number, not {settings[name]!r}") from None
    if not 0 <= value <= 1:
        raise PolicySpecError(f"{what} must be between 0 and 1, not {value:g}")
    return value


@register("llm")
def _llm(argument: str | None, options: Mapping[str, Any]) -> Policy:
    from hch.policies.llm import LLMPolicy

    return LLMPolicy.from_options(argument, options)


@register("human")
def _human(argument: str | None, options: Mapping[str, Any]) -> Policy:
    from hch.policies.human import HumanPolicy

    return HumanPolicy(name=argument)


@register("web")
def _web(argument: str | None, options: Mapping[str, Any]) -> Policy:
    """`web` / `web(NAME)`: participants of `hch serve` in their browsers (see hch/serve/policy.py)."""
    from hch.serve.policy import WebPolicy, active

    return WebPolicy(active(), name=argument)


@register("script")
def _script(argument: str | None, options: Mapping[str, Any]) -> Policy:
    from hch.policies.scripted import ScriptedPolicy

    if not argument:
        raise PolicySpecError("script needs a file: script:PATH (a YAML or JSON script) or script:NAME under policies/")
    return ScriptedPolicy.load(argument)


@register("vote")
def _vote(argument: str | None, options: Mapping[str, Any]) -> Policy:
    """`vote:K` or `vote(K)` over the offline expert; `vote(K, SPEC)` over any policy spec;
    `vote(SPEC, SPEC, ...)` (the first argument not a number) over different policies, one copy each."""
    from hch.policies.positional import is_positional, split_top
    from hch.policies.vote import panel, vote

    text = (argument or "").strip()
    first = split_top(text, ",", maxsplit=1)[0].strip()
    if not text or re.fullmatch(r"[-+]?\d+(\.\d*)?", first):
        count, _, inner = text.partition(",")
        if not count.strip().isdigit() or len(count.strip()) > 18 or int(count) < 1:
            raise PolicySpecError(
                f"vote needs a number of copies of 1 or more (of at most 18 digits): vote:K, vote(K, SPEC) or "
                f"vote(SPEC, SPEC, ...), not {argument!r}"
            )
        return vote(int(count), make_policy(inner.strip() or "expert", options))
    if is_positional(text):
        raise PolicySpecError(f"a vote over a positional spec needs a count: vote(K, {text}), not vote({text})")
    members = [part.strip() for part in split_top(text, ",")]
    if any(not member for member in members):
        raise PolicySpecError(f"vote over policies has an empty member in {argument!r}: vote(SPEC, SPEC, ...)")
    return panel([make_policy(member, options) for member in members])


@register("check")
def _check(argument: str | None, options: Mapping[str, Any]) -> Policy:
    """`check(SPEC, VERIFIER)` or `check(SPEC, VERIFIER, retries=N)`: see hch/policies/check.py."""
    from hch.policies.check import DEFAULT_RETRIES, check
    from hch.policies.positional import split_top

    usage = "check(SPEC, VERIFIER) or check(SPEC, VERIFIER, retries=N)"
    parts = [part.strip() for part in split_top(argument or "", ",")]
    retries = DEFAULT_RETRIES
    if len(parts) == 3 and parts[2].replace(" ", "").startswith("retries="):
        value = parts.pop().split("=", 1)[1].strip()
        if not value.isdigit():
            raise PolicySpecError(f"check retries must be a whole number of 0 or more, not {value!r}")
        retries = int(value)
    if len(parts) != 2 or not all(parts):
        raise PolicySpecError(f"check needs a policy and a verifier: {usage}, not {argument!r}")
    return check(make_policy(parts[0], options), make_policy(parts[1], options), retries)


@register("adversary")
def _adversary(argument: str | None, options: Mapping[str, Any]) -> Policy:
    """`adversary(rate=R, kind=inject|corrupt|oversized, ...)`: see hch/policies/adversary.py."""
    from hch.policies.adversary import from_spec

    return from_spec(argument, lambda spec: make_policy(spec, options))
