"""Validation of an edited template: every problem names its part and, when it has one, its line.

Each case starts from the shipped template of the key (which is valid) and breaks one part.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailflow.mail import catalog
from mailflow.mail.templates import Renderer, TemplateSource, templates_root
from mailflow.mail.validation import Problem, validate

LOCALES = ("fr", "en")
NEW_SALE = catalog.KINDS["seller_new_sale"]
CANCELLED = catalog.KINDS["buyer_sale_cancelled"]

LINKS_TEXT = (
    "Accepter : {{ links.accept }}\nRefuser : {{ links.refuse }}\nVoir : {{ links.view }}\n"
)
LINKS_HTML = (
    '<p><a href="{{ links.accept }}">Accepter</a></p>\n'
    "<p><a href=\"{{ links.refuse }}\">Cliquez ici si l'article n'est plus disponible</a></p>\n"
    '<p><a href="{{ links.view }}">Voir</a></p>\n'
)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(templates_root(), "Europe/Paris")


def _new_sale(renderer: Renderer, locale: str = "fr", **parts: str) -> list[Problem]:
    source = replace(renderer.shipped("seller_new_sale", locale), **parts)
    return validate(renderer, NEW_SALE, locale, source)


def _only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


class TestTheShippedTemplatesAreValid:
    def test_a_minimal_valid_edit_has_no_problem(self, renderer: Renderer) -> None:
        source = TemplateSource(
            "Vente {{ sale.id }} : {{ sale.title }}",
            "Bonjour {{ seller.name }},\n" + LINKS_TEXT,
            "<p>Bonjour {{ seller.name }},</p>\n" + LINKS_HTML,
        )
        assert validate(renderer, NEW_SALE, "fr", source) == []

    @pytest.mark.parametrize("locale", LOCALES)
    @pytest.mark.parametrize("key", sorted(catalog.KINDS))
    def test_every_key_ships_in_every_locale_and_passes_its_own_validation(
        self, renderer: Renderer, key: str, locale: str
    ) -> None:
        kind = catalog.KINDS[key]
        source = renderer.shipped(key, locale)
        assert validate(renderer, kind, locale, source) == []
        # ... and renders with its sample context, every part non-empty.
        rendered = renderer.render(key, locale, kind.sample_context(), source=source)
        assert rendered.subject and rendered.text.strip() and "<html" in rendered.html


class TestSyntax:
    def test_syntax_error_on_line_3_of_the_html(self, renderer: Renderer) -> None:
        html = "<p>un</p>\n<p>deux</p>\n<p>{{ sale.title + }}</p>\n" + LINKS_HTML
        problem = _only(_new_sale(renderer, html=html))
        assert (problem.part, problem.line) == ("html", 3)
        assert problem.message.startswith("syntax error")

    def test_unclosed_block_names_the_part(self, renderer: Renderer) -> None:
        text = "Bonjour\n{% if sale.title %}\n" + LINKS_TEXT
        problem = _only(_new_sale(renderer, text=text))
        assert problem.part == "text"
        assert problem.line is not None and problem.line >= 2
        assert "syntax error" in problem.message and "endif" in problem.message

    def test_unknown_filter_in_the_html_with_its_line(self, renderer: Renderer) -> None:
        html = LINKS_HTML + "<p>\n{{ sale.title|shout }}</p>\n"
        problem = _only(_new_sale(renderer, html=html))
        assert (problem.part, problem.line) == ("html", 5)
        assert "shout" in problem.message

    def test_syntax_error_in_the_subject(self, renderer: Renderer) -> None:
        problem = _only(_new_sale(renderer, subject="Vente {{ sale.id "))
        assert (problem.part, problem.line) == ("subject", 1)
        assert "syntax error" in problem.message


class TestVariables:
    def test_unknown_variable_on_line_2_of_the_text(self, renderer: Renderer) -> None:
        text = "Bonjour {{ seller.name }},\nVotre colis : {{ tracking_number }}\n" + LINKS_TEXT
        problem = _only(_new_sale(renderer, text=text))
        assert (problem.part, problem.line) == ("text", 2)
        assert "tracking_number" in problem.message
        # The message says what the key does provide.
        assert "links" in problem.message and "sale" in problem.message

    def test_unknown_attribute_of_a_provided_variable(self, renderer: Renderer) -> None:
        text = "Bonjour,\n\nArticle : {{ sale.titel }}\n" + LINKS_TEXT
        problem = _only(_new_sale(renderer, text=text))
        assert (problem.part, problem.line) == ("text", 3)
        assert "titel" in problem.message
        assert "title" in problem.message  # the fields it has

    def test_unknown_attribute_in_the_html(self, renderer: Renderer) -> None:
        html = LINKS_HTML + "<p>{{ seller.phone }}</p>\n"
        problem = _only(_new_sale(renderer, html=html))
        assert (problem.part, problem.line) == ("html", 4)
        assert "phone" in problem.message

    def test_a_variable_of_another_key_is_unknown(self, renderer: Renderer) -> None:
        # ``rate`` exists for the tier emails, not for the new-sale email.
        problem = _only(_new_sale(renderer, subject="{{ rate.value }} {{ sale.id }}"))
        assert (problem.part, problem.line) == ("subject", 1)
        assert "'rate'" in problem.message

    def test_variables_the_template_defines_itself_are_fine(self, renderer: Renderer) -> None:
        text = "{% set who = seller.name %}Bonjour {{ who }}\n" + LINKS_TEXT
        assert _new_sale(renderer, text=text) == []


class TestRequirements:
    def test_new_sale_without_the_refuse_link_in_the_text(self, renderer: Renderer) -> None:
        text = "Accepter : {{ links.accept }}\nVoir : {{ links.view }}\n"
        problem = _only(_new_sale(renderer, text=text))
        assert (problem.part, problem.line) == ("text", None)
        assert "links.refuse" in problem.message

    def test_new_sale_without_the_refuse_link_in_the_html(self, renderer: Renderer) -> None:
        html = '<p><a href="{{ links.accept }}">A</a> <a href="{{ links.view }}">V</a></p>\n'
        problem = _only(_new_sale(renderer, html=html))
        assert (problem.part, problem.line) == ("html", None)
        assert "links.refuse" in problem.message

    def test_a_refuse_link_hidden_in_a_false_branch_does_not_count(
        self, renderer: Renderer
    ) -> None:
        text = "{{ links.accept }} {{ links.view }}\n{% if false %}{{ links.refuse }}{% endif %}\n"
        problem = _only(_new_sale(renderer, text=text))
        assert problem.part == "text" and "links.refuse" in problem.message

    def test_a_refuse_link_only_in_an_html_comment_is_not_shown(self, renderer: Renderer) -> None:
        html = (
            '<p><a href="{{ links.accept }}">A</a> <a href="{{ links.view }}">V</a></p>\n'
            "<!-- {{ links.refuse }} -->\n"
        )
        problem = _only(_new_sale(renderer, html=html))
        assert problem.part == "html" and "links.refuse" in problem.message

    @pytest.mark.parametrize("locale", LOCALES)
    def test_cancelled_without_the_sellers_message(self, renderer: Renderer, locale: str) -> None:
        shipped = renderer.shipped("buyer_sale_cancelled", locale)
        source = replace(
            shipped,
            text="Bonjour {{ buyer.name }},\nVente annulée : {{ sale.title }}.\n",
            html="<p>Bonjour {{ buyer.name }},</p>\n<p>Vente annulée : {{ sale.title }}.</p>\n",
        )
        problems = validate(renderer, CANCELLED, locale, source)
        assert [(p.part, p.line) for p in problems] == [("text", None), ("html", None)]
        assert all("sale.message" in p.message for p in problems)

    def test_cancelled_with_the_message_in_the_text_only(self, renderer: Renderer) -> None:
        shipped = renderer.shipped("buyer_sale_cancelled", "fr")
        source = replace(shipped, html="<p>Vente annulée : {{ sale.title }}.</p>\n")
        problem = _only(validate(renderer, CANCELLED, "fr", source))
        assert problem.part == "html" and "sale.message" in problem.message


class TestHtml:
    def test_unclosed_table_with_its_line(self, renderer: Renderer) -> None:
        html = (
            "<p>Bonjour</p>\n" + LINKS_HTML + '<table role="presentation">\n<tr><td>x</td></tr>\n'
        )
        problem = _only(_new_sale(renderer, html=html))
        assert (problem.part, problem.line) == ("html", 5)
        assert "<table>" in problem.message

    def test_stray_closing_div_with_its_line(self, renderer: Renderer) -> None:
        html = "<p>Bonjour</p>\n" + LINKS_HTML + "</div>\n<p>fin</p>\n"
        problem = _only(_new_sale(renderer, html=html))
        assert (problem.part, problem.line) == ("html", 5)
        assert "</div>" in problem.message

    def test_an_element_closed_in_the_wrong_order(self, renderer: Renderer) -> None:
        html = LINKS_HTML + "<div>\n<span>texte\n</div>\n"
        problem = _only(_new_sale(renderer, html=html))
        assert (problem.part, problem.line) == ("html", 5)
        assert "<span>" in problem.message

    def test_optional_end_tags_and_void_elements_are_fine(self, renderer: Renderer) -> None:
        html = LINKS_HTML + "<ul>\n<li>un\n<li>deux\n</ul>\n<br>\n<img src='x.png' alt=''>\n"
        assert _new_sale(renderer, html=html) == []


class TestEmptyParts:
    @pytest.mark.parametrize(
        ("field", "part"), [("subject", "subject"), ("text", "text"), ("html", "html")]
    )
    @pytest.mark.parametrize("blank", ["", "  \n\t\n"])
    def test_an_empty_part(self, renderer: Renderer, field: str, part: str, blank: str) -> None:
        problem = _only(_new_sale(renderer, **{field: blank}))
        assert (problem.part, problem.line) == (part, None)
        assert "empty" in problem.message

    def test_several_problems_are_all_reported_in_part_order(self, renderer: Renderer) -> None:
        problems = _new_sale(
            renderer,
            subject="",
            text="x\n{{ nope }}\n" + LINKS_TEXT,
            html="<p>\n{{ oops(}}</p>\n" + LINKS_HTML,
        )
        assert [(p.part, p.line) for p in problems] == [
            ("subject", None),
            ("text", 2),
            ("html", 2),
        ]

    def test_an_unknown_name_a_missing_link_and_broken_html_in_one_save(
        self, renderer: Renderer
    ) -> None:
        problems = _new_sale(
            renderer,
            text="Bonjour {{ sellr.name }}\nAccepter : {{ links.accept }} {{ links.view }}\n",
            html="<div>\n{{ nope }}\n" + LINKS_HTML,
        )
        assert [(p.part, p.line) for p in problems] == [
            ("text", 1),
            ("text", None),
            ("html", 1),
            ("html", 2),
        ]
        assert "'sellr'" in problems[0].message
        assert "links.refuse" in problems[1].message
        assert "<div> is never closed" in problems[2].message
        assert "'nope'" in problems[3].message


class TestTextOutsideBlocks:
    @pytest.mark.parametrize("part", ["subject", "text", "html"])
    def test_a_line_after_the_last_block_would_never_be_shown(
        self, renderer: Renderer, part: str
    ) -> None:
        shipped = renderer.shipped("seller_new_sale", "fr")
        field = {"subject": "subject", "text": "text", "html": "html"}[part]
        original = getattr(shipped, field)
        if "{% extends" not in original:
            original = '{% extends "email/fr/_layout.txt.j2" %}{% block body %}x{% endblock %}'
        edited = original.rstrip("\n") + "\n\nPS : merci !\n"
        problems = [p for p in _new_sale(renderer, **{field: edited}) if "block" in p.message]
        label = {"subject": "subject", "text": "text", "html": "html"}[part]
        line = edited.count("\n")  # the PS line, the last one
        assert [(p.part, p.line, p.message) for p in problems] == [
            (label, line, "outside any block: it would never be shown")
        ]

    def test_blank_lines_macros_and_assignments_outside_blocks_are_fine(
        self, renderer: Renderer
    ) -> None:
        shipped = renderer.shipped("seller_new_sale", "fr")
        html = shipped.html + "\n\n{% set x = 1 %}\n{% macro m() %}hi{% endmacro %}\n  \n"
        assert _new_sale(renderer, html=html) == []

    def test_an_expression_outside_blocks_is_refused_too(self, renderer: Renderer) -> None:
        shipped = renderer.shipped("seller_new_sale", "fr")
        html = shipped.html + "{% if sale %}{{ sale.title }}{% endif %}\n"
        problem = _only(_new_sale(renderer, html=html))
        assert problem.message == "outside any block: it would never be shown"
