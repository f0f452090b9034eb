"""Templates of a scripted human cannot run for ever or fill memory (issue 14, class 4)."""

from __future__ import annotations

import sys

import pytest

from hch.policies import bounded_jinja
from hch.policies.bounded_jinja import TemplateBudgetError, render
from hch.policies.scripted import compiled

# Each would take minutes, or gigabytes (up to 10^12 characters), without the budget.
BOMBS = {
    "nested loops, no output": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                                "steps|ran over"),
    "nested loops with output": ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                                 "output is over|steps|ran over"),
    "a loop over a variable": ("{% set xs = range(100000)|list %}{% for a in xs %}{% for b in xs %}{% endfor %}"
                               "{% endfor %}", "steps|ran over"),
    "a recursive macro looping": ("{% macro f(n) %}{% for i in range(100000) %}{{ f(n - 1) if n else '' }}{% endfor %}"
                                  "{% endmacro %}{{ f(3) }}", "steps|ran over|output is over"),
    "string repetition": ("{{ 'x' * 1000000000 }}", "a repetition would hold 1,000,000,000"),
    "repetition through a variable": ("{% set n = 10 ** 9 %}{{ 'x' * n }}", "a repetition"),
    "list repetition": ("{{ ([0] * 1000000000)|length }}", "a repetition"),
    "a huge power": ("{% set a = 10 %}{{ a ** 100000000 }}", "a power with about 100,000,000 digits"),
    "center()": ("{{ 'x'.center(1000000000) }}", r"center\(\) would hold"),
    "ljust()": ("{{ 'x'.ljust(1000000000) }}", r"ljust\(\) would hold"),
    "zfill()": ("{{ '1'.zfill(1000000000) }}", r"zfill\(\) would hold"),
    "center filter": ("{{ 'x'|center(1000000000) }}", r"center\(\) would hold"),
    "indent filter": ("{{ 'x\ny'|indent(1000000000) }}", r"indent\(\) would hold"),
    "batch filter": ("{{ [1]|batch(1000000000, 0)|list|length }}", r"batch\(\) would hold"),
    "format width": ("{{ '{:>1000000000}'.format(1) }}", "format width 1000000000"),
    "format filter width": ("{{ '%1000000000d'|format(1) }}", "format width"),
    "percent width": ("{{ '%1000000000d' % 1 }}", "format width"),
    "format with many fields": ("{{ ('{0}' * 100000).format('y' * 100000) }}", "a formatted string"),
    "percent with many fields": ("{{ ('%s' * 100000) % (('y' * 100000,) * 100000) }}", "a formatted string"),
    "doubling with ~": ("{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
                        "{% endfor %}{{ ns.s|length }}", "a value would hold"),
    "doubling with +": ("{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}"
                        "{% endfor %}", "a concatenation"),
    "doubling a list": ("{% set ns = namespace(s=[1]) %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}"
                        "{% endfor %}", "a concatenation"),
    "replace filter": ("{{ ('x' * 100000)|replace('', 'y' * 100000) }}", r"replace\(\) would hold"),
    "replace method": ("{{ ('x' * 100000).replace('x', 'y' * 100000) }}", r"replace\(\) would hold"),
    "join filter": ("{{ range(100000)|join('y' * 100000) }}", r"join\(\) would hold"),
    "join method": ("{{ ('y' * 100000).join(range(100000)|map('string')) }}", r"join\(\)|a value"),
    "lipsum": ("{{ lipsum(1000000000) }}", "'lipsum' is undefined"),
    # sizes that are a product of two bounded ones, and widths taken from the arguments
    "expandtabs of many tabs": ("{{ ('\t' * 100000).expandtabs(1000000) }}", r"expandtabs\(\) would hold"),
    "indent of many lines": ("{{ ('a\n' * 100000)|indent(1000000) }}", r"indent\(\) would hold"),
    "indent by a long string": ("{{ ('a\n' * 100000)|indent('x' * 100000) }}", r"indent\(\) would hold"),
    "translate to long strings": ("{{ ('x' * 1000000).translate({120: 'y' * 1000000}) }}", r"translate\(\) would"),
    "nested format width": ("{{ '{:>{w}}'.format(1, w=1000000000) }}", "format width 1000000000"),
    "positional nested width": ("{{ '{0:{1}}'.format(1, 1000000000) }}", "format width 1000000000"),
    "format_map nested width": ("{{ '{a:>{b}}'.format_map({'a': 1, 'b': 1000000000}) }}", "format width"),
    "star width": ("{{ '%*d' % (1000000000, 1) }}", "format width 1000000000"),
    "star precision": ("{{ '%.*f' % (1000000000, 1) }}", "format width 1000000000"),
    "star width filter": ("{{ '%*d'|format(1000000000, 1) }}", "format width 1000000000"),
}


@pytest.fixture(autouse=True)
def short_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounded_jinja, "MAX_SECONDS", 0.5)  # keeps the suite quick; the bound is what counts


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_template_that_would_never_end_or_fill_memory_fails_in_one_line(name: str) -> None:
    template, message = BOMBS[name]
    with pytest.raises(Exception, match=message) as info:
        render(compiled(template), {})
    assert "\n" not in str(info.value)
    assert isinstance(info.value, TemplateBudgetError) or name == "lipsum"


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ [1, 2, 3]|sum }} {{ 'ab' * 3 }} {{ 2 ** 10 }}", "6 ababab 1024"),
    ("{{ '{} and {}'.format(1, 'two') }} {{ '%s-%03d' % ('a', 3) }}", "1 and two a-003"),
    ("{{ 'a, b, c'.split(', ')|join('+') }} {{ 'x'|center(5) }}|", "a+b+c   x  |"),
    ("{% for i in range(1000) %}{% endfor %}{{ range(5)|map('string')|join(',') }}", "0,1,2,3,4"),
    ("{% set ns = namespace(n=0) %}{% for i in range(100) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", "4950"),
    ("{{ ('x' * 99999)|length }}", "99999"),
    ("{{ '{:>{w}}'.format(1, w=3) }}|{{ '%*d' % (3, 1) }}|{{ 'a\tb'.expandtabs(2) }}|{{ 'ab'.translate({97: 'xy'}) }}",
     "  1|  1|a b|xyb"),
])
def test_ordinary_templates_render_as_before(template: str, expected: str) -> None:
    assert render(compiled(template), {}) == expected
    assert compiled(template).render() == expected  # the same as plain Jinja


def test_the_output_is_cut_off_at_its_bound() -> None:
    with pytest.raises(TemplateBudgetError, match="output is over 100,000"):
        render(compiled("{% for i in range(20) %}{{ 'x' * 10000 }}{% endfor %}"), {})


def test_a_tracer_already_set_is_restored() -> None:
    calls: list[str] = []

    def tracer(frame: object, event: str, arg: object) -> None:
        calls.append(event)

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        render(compiled("{{ 1 }}"), {})
        assert sys.gettrace() is tracer
        with pytest.raises(TemplateBudgetError):
            render(compiled("{{ 'x' * 10 ** 9 }}"), {})
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(previous)
