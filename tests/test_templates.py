"""Tests for promptops.templates: variables, located problems and strict local rendering."""
from __future__ import annotations

import pytest

from promptops.errors import PromptOpsError
from promptops.templates import (
    FORMATS,
    MAX_SECTION_DEPTH,
    TemplateInfo,
    TemplateProblem,
    TemplateRenderError,
    analyze,
    render,
)


def problems(template: str, template_format: str = "mustache") -> tuple[TemplateProblem, ...]:
    return analyze(template, template_format).problems


def render_error(template: str, template_format: str, values: dict) -> TemplateRenderError:
    with pytest.raises(TemplateRenderError) as caught:
        render(template, template_format, values)
    return caught.value


def test_formats_and_error_type():
    assert FORMATS == ("mustache", "jinja2", "f-string")
    assert issubclass(TemplateRenderError, PromptOpsError)


def test_unknown_format_is_a_problem_and_a_render_error():
    assert analyze("x", "handlebars") == TemplateInfo(
        frozenset(),
        (TemplateProblem("unknown template_format 'handlebars'", 0, "use one of: mustache, jinja2, f-string"),),
    )
    error = render_error("x", "handlebars", {})
    assert str(error) == "unknown template_format 'handlebars'; use one of: mustache, jinja2, f-string"


# --------------------------------------------------------------------------- mustache: variables


def test_mustache_variables_of_every_tag_kind():
    info = analyze("{{a}} {{ b }} {{{c}}} {{&d}} {{e.f.g}} {{! not_a_variable }}", "mustache")
    assert info == TemplateInfo(frozenset({"a", "b", "c", "d", "e"}), (), frozenset())


def test_mustache_section_names_are_variables_and_names_inside_are_inner():
    info = analyze("{{#items}}{{title}} {{#tags}}{{.}}{{/tags}}{{/items}}{{^empty}}none{{/empty}}", "mustache")
    assert info.variables == frozenset({"items", "empty"})
    assert info.inner_names == frozenset({"title", "tags"})
    assert info.problems == ()


def test_mustache_names_inside_inverted_sections_are_top_level():
    # An inverted section pushes no item, so its names resolve in the top-level values.
    info = analyze("{{^items}}{{fallback}}{{/items}}", "mustache")
    assert info.variables == frozenset({"items", "fallback"})
    assert info.inner_names == frozenset()


def test_mustache_name_used_inside_and_outside_is_only_a_variable():
    info = analyze("{{#items}}{{name}}{{/items}} {{name}}", "mustache")
    assert info.variables == frozenset({"items", "name"})
    assert info.inner_names == frozenset()


def test_mustache_set_delimiter_changes_what_is_a_tag():
    info = analyze("{{=<% %>=}}<% a %> {{b}} <%={{ }}=%>{{c}}", "mustache")
    assert info == TemplateInfo(frozenset({"a", "c"}), (), frozenset())


# --------------------------------------------------------------------------- mustache: problems


def test_mustache_unclosed_tag():
    assert problems("Hi {{name") == (TemplateProblem("unclosed tag {{name", 3, "close it with }}"),)


def test_mustache_tag_left_open_before_the_next_tag():
    info = analyze("{{a and {{b}}", "mustache")
    assert info.problems == (TemplateProblem("unclosed tag {{a and", 0, "close it with }} before the next {{"),)
    assert info.variables == frozenset({"b"})


def test_mustache_unclosed_section_points_at_the_opening_tag():
    assert problems("a{{#items}}b") == (
        TemplateProblem("unclosed section {{#items}}", 1, "close it with {{/items}}"),
    )


def test_mustache_closing_tag_without_opener():
    assert problems("x {{/a}}") == (
        TemplateProblem(
            "closing tag {{/a}} has no open section", 2, "remove it or open the section before it with {{#a}}"
        ),
    )


def test_mustache_mismatched_close_is_one_problem():
    assert problems("{{#a}}{{/b}}") == (
        TemplateProblem(
            "closing tag {{/b}} does not match open section {{#a}}", 6, "close {{#a}} with {{/a}} first"
        ),
    )


def test_mustache_mismatched_close_recovers_to_the_named_section():
    # {{/a}} closes {{#b}} and {{#a}}: one problem, and no "unclosed section" afterwards.
    assert problems("{{#a}}{{#b}}{{/a}}") == (
        TemplateProblem(
            "closing tag {{/a}} does not match open section {{#b}}", 12, "close {{#b}} with {{/b}} first"
        ),
    )


@pytest.mark.parametrize(
    ("template", "offset", "tag"),
    [("a {{}} b", 2, "{{}}"), ("{{ }}", 0, "{{ }}"), ("x{{{ }}}", 1, "{{{ }}}"), ("{{&}}", 0, "{{&}}")],
)
def test_mustache_empty_tag(template, offset, tag):
    hint = "put a variable name inside or remove it"
    assert problems(template) == (TemplateProblem(f"empty tag {tag}", offset, hint),)


def test_mustache_section_without_name():
    assert problems("{{#}}x{{/}}") == (
        TemplateProblem("section tag without a name: {{#}}", 0, "name the list or flag, e.g. {{#items}}"),
    )


@pytest.mark.parametrize("template", ["x{{=<%=}}", "x{{=<% %> [[=}}", "x{{=<= %>=}}"])
def test_mustache_bad_set_delimiter(template):
    tag = template[1:]
    assert problems(template) == (
        TemplateProblem(
            f"bad set-delimiter tag {tag}",
            1,
            "write it as {{=<% %>=}}: two delimiters separated by a space, without spaces or '=' inside",
        ),
    )


def test_mustache_set_delimiter_without_closing_equals():
    info = analyze("{{=<% %>}}{{x}}", "mustache")
    assert info.problems == (
        TemplateProblem("set-delimiter tag {{=<% %>}} does not end with '=}}'", 0, "write it as {{=<% %>=}}"),
    )
    # The malformed tag changes nothing: {{x}} is still a tag.
    assert info.variables == frozenset({"x"})


def test_mustache_triple_not_closed_with_three_braces():
    info = analyze("{{{x}} y", "mustache")
    assert info.problems == (
        TemplateProblem("triple mustache {{{x}} is not closed with '}}}'", 0, "write {{{name}}} or {{name}}"),
    )
    assert info.variables == frozenset({"x"})


def test_mustache_partials_are_not_supported():
    assert problems("Hi {{> footer}}") == (
        TemplateProblem("partials are not supported: {{> footer}}", 3, "inline the text"),
    )


def test_mustache_parents_and_blocks_are_not_supported_and_their_closing_tags_match():
    assert problems("{{<base}}{{$title}}T{{/title}}{{/base}}") == (
        TemplateProblem("parent templates are not supported: {{<base}}", 0, "inline the text"),
        TemplateProblem("blocks are not supported: {{$title}}", 9, "inline the text"),
    )


def test_mustache_implicit_iterator_outside_a_section():
    assert problems("x {{.}}") == (
        TemplateProblem("{{.}} outside a section has no item to print", 2, "use it inside {{#list}}...{{/list}}"),
    )


def test_mustache_bad_dotted_name():
    assert problems("{{user..name}}") == (
        TemplateProblem("bad name 'user..name' in {{user..name}}", 0, "dotted names look like user.name"),
    )


def test_mustache_unclosed_tag_with_custom_delimiters():
    found = problems("{{=<% %>=}}<%{x}%> <%{y}%")
    assert found == (TemplateProblem("unclosed tag <%{y}%", 19, "close it with %>"),)


def test_mustache_reports_every_problem_in_offset_order():
    found = problems("{{> p}} {{}} {{/x}} {{#open}}")
    assert [(p.offset, p.message) for p in found] == [
        (0, "partials are not supported: {{> p}}"),
        (8, "empty tag {{}}"),
        (13, "closing tag {{/x}} has no open section"),
        (20, "unclosed section {{#open}}"),
    ]


def test_mustache_nesting_up_to_the_limit_is_fine():
    depth = MAX_SECTION_DEPTH
    assert problems("{{#a}}" * depth + "{{/a}}" * depth) == ()


def test_mustache_nesting_beyond_the_limit_is_a_problem_at_the_first_deep_opener():
    depth = MAX_SECTION_DEPTH + 1
    assert problems("{{#a}}" * depth + "{{/a}}" * depth) == (
        TemplateProblem(
            "sections nested more than 50 levels deep",
            6 * MAX_SECTION_DEPTH,
            "flatten the template; split deep structures into separate variables",
        ),
    )


def test_mustache_ten_thousand_deep_nesting_does_not_recurse():
    template = "{{#a}}" * 10_000 + "{{/a}}" * 10_000
    found = problems(template)
    assert [(p.message, p.offset) for p in found] == [("sections nested more than 50 levels deep", 300)]
    with pytest.raises(TemplateRenderError) as caught:
        render(template, "mustache", {"a": True})
    assert str(caught.value).startswith("invalid mustache template: sections nested more than 50 levels deep")


def test_mustache_ten_thousand_unclosed_sections_each_reported():
    found = problems("{{#a}}" * 10_000)
    assert len(found) == 10_001  # the depth problem plus one per unclosed section
    assert (found[0].message, found[0].offset) == ("unclosed section {{#a}}", 0)
    assert (found[-1].message, found[-1].offset) == ("unclosed section {{#a}}", 6 * 9_999)


def test_mustache_many_unclosed_openers_stay_linear():
    # Every opener sees a '{{' before the one far-away '}}'; a naive rescan would be quadratic.
    found = problems("{{a " * 200_000 + "}}")
    assert len(found) == 199_999
    assert found[-1].offset == 4 * 199_998


def test_mustache_one_megabyte_template():
    template = "Hello {{name}}, {{#items}}\n- {{title}}\n{{/items}}\nsome prose to pad the line\n" * 14_000
    assert len(template) > 1_000_000
    info = analyze(template, "mustache")
    assert info == TemplateInfo(frozenset({"name", "items"}), (), frozenset({"title"}))


# --------------------------------------------------------------------------- mustache: rendering


def test_mustache_does_not_html_escape():
    value = "<b>&\"'</b>"
    assert render("{{a}}|{{{a}}}|{{&a}}|{{ a }}", "mustache", {"a": value}) == "|".join([value] * 4)


def test_mustache_scalar_values():
    values = {"none": None, "num": 2.5, "yes": True, "zero": 0, "text": "t"}
    assert render("[{{none}}][{{num}}][{{yes}}][{{zero}}][{{text}}]", "mustache", values) == "[][2.5][True][0][t]"


def test_mustache_section_over_list_of_dicts_falls_back_to_parent_context():
    template = "{{#items}}- {{name}} ({{lang}})\n{{/items}}"
    values = {"items": [{"name": "a"}, {"name": "b", "lang": "fr"}], "lang": "en"}
    assert render(template, "mustache", values) == "- a (en)\n- b (fr)\n"


def test_mustache_section_over_scalars_and_nested_lists():
    assert render("{{#xs}}({{.}}){{/xs}}", "mustache", {"xs": ["a", 1, 2.5]}) == "(a)(1)(2.5)"
    assert render("{{#xs}}[{{#.}}{{.}}{{/.}}]{{/xs}}", "mustache", {"xs": [[1, 2], ["c"]]}) == "[12][c]"


def test_mustache_sections_push_dicts_and_skip_falsy_values():
    template = "{{#user}}{{name}}{{/user}}{{#off}}X{{/off}}{{#empty}}Y{{/empty}}{{#blank}}Z{{/blank}}{{#n}}N{{/n}}"
    values = {"user": {"name": "Ann"}, "off": False, "empty": [], "blank": "", "n": 0}
    assert render(template, "mustache", values) == "Ann"


def test_mustache_dotted_names():
    assert render("{{user.address.city}}", "mustache", {"user": {"address": {"city": "Oslo"}}}) == "Oslo"
    assert render("{{#user.admin}}admin{{/user.admin}}", "mustache", {"user": {"admin": True}}) == "admin"


def test_mustache_inverted_sections():
    template = "{{^items}}no items{{/items}}"
    assert render(template, "mustache", {"items": []}) == "no items"
    assert render(template, "mustache", {"items": None}) == "no items"
    assert render(template, "mustache", {"items": [1]}) == ""


def test_mustache_standalone_section_lines_are_removed():
    template = "Items:\n{{#items}}\n- {{.}}\n{{/items}}\nEnd\n"
    assert render(template, "mustache", {"items": ["a", "b"]}) == "Items:\n- a\n- b\nEnd\n"
    assert render(template, "mustache", {"items": []}) == "Items:\nEnd\n"


def test_mustache_standalone_indented_comment_crlf_and_end_of_template():
    template = "A\r\n  {{! note }}\t\r\n{{#x}}\r\nB\r\n  {{/x}}"
    assert render(template, "mustache", {"x": True}) == "A\r\nB\r\n"


def test_mustache_standalone_multiline_comment_and_set_delimiter_lines():
    template = "Begin.\n  {{!\n  a note\n  }}\n{{=<% %>=}}\n<%x%>\n"
    assert render(template, "mustache", {"x": "X"}) == "Begin.\nX\n"


def test_mustache_tags_sharing_a_line_with_text_are_not_standalone():
    assert render("  {{#x}}yes{{/x}}\n", "mustache", {"x": True}) == "  yes\n"
    assert render("a {{#x}}\nb\n{{/x}} c\n", "mustache", {"x": True}) == "a \nb\n c\n"
    # A variable alone on a line is never standalone: its line stays.
    assert render("{{a}}\nz", "mustache", {"a": ""}) == "\nz"


def test_mustache_set_delimiters_render():
    template = "{{=<% %>=}}\n<% x %> {{x}}\n<%={{ }}=%>\n{{x}}"
    assert render(template, "mustache", {"x": "X"}) == "X {{x}}\nX"


def test_mustache_missing_variables_are_an_error_listing_them_sorted():
    error = render_error("{{b}} {{#a}}{{/a}} {{c}}", "mustache", {"c": 1})
    assert str(error) == "missing value for variables a, b: pass --var NAME=VALUE"
    assert error.missing == ("a", "b")


def test_mustache_missing_name_inside_section_is_an_error_naming_it():
    error = render_error("{{#items}}{{title}}{{/items}}", "mustache", {"items": [{"x": 1}]})
    assert str(error) == "missing value for variable title: pass --var NAME=VALUE"


def test_mustache_missing_dotted_name_names_the_whole_path():
    error = render_error("{{user.name}}", "mustache", {"user": {}})
    assert error.missing == ("user.name",)


def test_mustache_render_refuses_a_template_with_problems():
    error = render_error("{{#a}}x", "mustache", {"a": True})
    assert str(error) == "invalid mustache template: unclosed section {{#a}} at offset 0 (close it with {{/a}})"
    assert error.problems == (TemplateProblem("unclosed section {{#a}}", 0, "close it with {{/a}}"),)


def test_render_error_counts_further_problems():
    error = render_error("{{}} {{}} {{}}", "mustache", {})
    assert str(error) == (
        "invalid mustache template: empty tag {{}} at offset 0 (put a variable name inside or remove it)"
        "; and 2 more problems"
    )


# --------------------------------------------------------------------------- jinja2


def test_jinja_variables_exclude_loop_variables_and_globals():
    template = "{% for item in items %}{{ item.name }} {{ greeting }}{% endfor %}{{ range(2)|list }}"
    info = analyze(template, "jinja2")
    assert info == TemplateInfo(frozenset({"items", "greeting"}), ())


def test_jinja_syntax_error_on_line_three_points_at_the_line_start():
    template = "line one\nline two\n{% if %}\nline four"
    expected = TemplateProblem("Expected an expression, got 'end of statement block'", 18)
    assert problems(template, "jinja2") == (expected,)


def test_jinja_lines_are_counted_like_jinja_counts_them():
    assert problems("a\r\nb\r\n{% endif %}", "jinja2") == (TemplateProblem("Encountered unknown tag 'endif'.", 6),)
    assert problems("a\rb\r{% endif %}", "jinja2") == (TemplateProblem("Encountered unknown tag 'endif'.", 4),)


def test_jinja_unknown_filter_is_a_problem():
    found = problems("{{ x }}\n{{ x | nofilter }}", "jinja2")
    assert found == (TemplateProblem("No filter named 'nofilter'.", 8),)


def test_jinja_deep_nesting_is_a_problem_not_a_crash():
    expected = TemplateProblem(
        "expressions or blocks nest too deeply for Jinja to compile", 0, "flatten the template"
    )
    # 3000 nested ifs overflow Jinja's recursive parser; 30 nested fors overflow Python's compiler.
    for template in ("{% if a %}" * 3000 + "{% endif %}" * 3000, "{% for i in x %}" * 30 + "{% endfor %}" * 30):
        assert problems(template, "jinja2") == (expected,)


def test_jinja_renders_without_escaping_and_keeps_the_trailing_newline():
    assert render("Hi {{ name }}!\n", "jinja2", {"name": "<b>&"}) == "Hi <b>&!\n"


def test_jinja_missing_variables_are_listed_sorted():
    error = render_error("{{ b }}{{ a }}{{ c }}", "jinja2", {"c": 1})
    assert str(error) == "missing value for variables a, b: pass --var NAME=VALUE"
    assert error.missing == ("a", "b")


def test_jinja_missing_ignores_variables_only_tested_with_is_defined():
    error = render_error("{% if x is defined %}{{ x }}{% endif %}{{ y }}", "jinja2", {})
    assert error.missing == ("y",)


def test_jinja_undefined_attribute_is_a_render_error():
    error = render_error("{{ user.name }}", "jinja2", {"user": {}})
    assert str(error) == "jinja2 template uses an undefined value: 'dict object' has no attribute 'name'"


def test_jinja_sandbox_violation_is_a_render_error():
    error = render_error("{{ x.__class__ }}", "jinja2", {"x": 1})
    assert str(error) == (
        "jinja2 template tried an unsafe operation: access to attribute '__class__' of 'int' object is unsafe."
    )


def test_jinja_runtime_failure_is_a_render_error():
    error = render_error("{{ 1 / 0 }}", "jinja2", {})
    assert str(error) == "jinja2 template failed to render: ZeroDivisionError: division by zero"


def test_jinja_render_refuses_a_syntax_error():
    error = render_error("a\n{% if %}", "jinja2", {})
    assert str(error) == (
        "invalid jinja2 template: Expected an expression, got 'end of statement block' at offset 2"
    )


# --------------------------------------------------------------------------- f-string


def test_fstring_variables_with_conversions_specs_and_escapes():
    info = analyze("Hi {name}, {count:>4} {value!r} {{literal}} {amount:.{digits}f}", "f-string")
    assert info == TemplateInfo(frozenset({"name", "count", "value", "amount", "digits"}), ())


def test_fstring_doubled_braces_are_literal():
    assert render("{{x}} = {x} {{", "f-string", {"x": 1}) == "{x} = 1 {"


def test_fstring_renders_specs_conversions_and_none_as_empty():
    values = {"n": 3.14159, "s": "hi", "gone": None, "w": 6}
    assert render("[{n:.2f}][{s!r}][{gone}][{s:>{w}}]", "f-string", values) == "[3.14]['hi'][][    hi]"


def test_fstring_single_closing_brace():
    assert problems("a } b", "f-string") == (
        TemplateProblem("single '}' outside a field", 2, "write '}}' for a literal brace"),
    )


@pytest.mark.parametrize(("template", "offset"), [("a {b", 2), ("x {", 2), ("{{ {a {b}", 3)])
def test_fstring_unclosed_brace(template, offset):
    found = problems(template, "f-string")
    hint = "close the field with '}', or write '{{' for a literal brace"
    assert found[0] == TemplateProblem("unclosed '{'", offset, hint)


@pytest.mark.parametrize(
    ("template", "field"), [("x {}", "{}"), ("x {0}", "{0}"), ("x {:>3}", "{:>3}"), ("x {0.a}", "{0.a}")]
)
def test_fstring_positional_fields(template, field):
    assert problems(template, "f-string") == (
        TemplateProblem(f"f-string fields must be named: {field}", 2, "write a name, e.g. {customer}"),
    )


@pytest.mark.parametrize(("template", "field"), [("x {a.b}", "{a.b}"), ("x {a[0]}", "{a[0]}")])
def test_fstring_attribute_and_index_access(template, field):
    assert problems(template, "f-string") == (
        TemplateProblem(
            f"only plain names are supported: {field}",
            2,
            "pass the value as its own variable, e.g. {customer_name}",
        ),
    )


def test_fstring_json_braces_are_not_a_field_name():
    assert problems('Return {"k": 1}', "f-string") == (
        TemplateProblem(
            'not a valid field name: {"k": 1}',
            7,
            "use a Python identifier, or write '{{' and '}}' for literal braces",
        ),
    )


@pytest.mark.parametrize(
    ("template", "message", "hint"),
    [
        ("{x!z}", "unknown conversion '!z' in {x!z}", "use !r, !s or !a"),
        ("{x!}", "missing conversion after '!' in {x!}", "write !r, !s or !a, or drop the '!'"),
        (
            "{x!rr}",
            "expected ':' after the conversion in {x!rr}",
            "a conversion is one letter, optionally followed by ':' and a format spec",
        ),
    ],
)
def test_fstring_bad_conversions(template, message, hint):
    assert problems(template, "f-string") == (TemplateProblem(message, 0, hint),)


def test_fstring_format_spec_fields_nest_one_level_only():
    assert problems("{x:{y:{z}}}", "f-string") == (
        TemplateProblem(
            "format spec fields cannot nest further: {y:{z}}",
            3,
            "use at most one level of {name} inside a format spec",
        ),
    )


def test_fstring_reports_every_problem_in_offset_order():
    found = problems("} {} {a.b} {", "f-string")
    assert [p.offset for p in found] == [0, 2, 5, 11]


def test_fstring_many_unclosed_braces_stay_linear():
    found = problems("{ " * 200_000, "f-string")
    assert len(found) == 200_000
    assert found[-1].offset == 399_998


def test_fstring_one_megabyte_template():
    template = "Dear {name}, your order {order!r} costs {total:>10.2f} {{EUR}}.\n" * 17_000
    assert len(template) > 1_000_000
    assert analyze(template, "f-string") == TemplateInfo(frozenset({"name", "order", "total"}), ())


def test_fstring_missing_variables_are_a_render_error_not_key_error():
    error = render_error("{b} {a} {c}", "f-string", {"c": 1})
    assert str(error) == "missing value for variables a, b: pass --var NAME=VALUE"
    assert error.missing == ("a", "b")


def test_fstring_format_spec_failure_is_a_render_error():
    error = render_error("{n:.2f}", "f-string", {"n": "abc"})
    assert str(error) == "f-string template failed to render: Unknown format code 'f' for object of type 'str'"


def test_fstring_render_refuses_attribute_access():
    error = render_error("{x.__class__}", "f-string", {"x": 1})
    assert error.problems[0].message == "only plain names are supported: {x.__class__}"
