"""The template service over in-memory versions and the shipped files: drafts are numbered
and validated, publishing and rollback change what renders, and a changed shipped default
is noticed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailflow.services import templates
from mailflow.services.errors import InvalidInput, NotFound
from tests.fakes_reads import FakeTemplateVersions, context

KEY, LOCALE = "buyer_sale_accepted", "en"
SUBJECT = "Order {{ order.external_id }}: on its way soon"


class TestTemplates:
    def setup_method(self) -> None:
        self.versions = FakeTemplateVersions()
        self.ctx = context(template_versions=self.versions)
        self.shipped = self.ctx.renderer.shipped(KEY, LOCALE)

    def _draft(self, subject: str = SUBJECT) -> int:
        return templates.save_draft(
            self.ctx, KEY, LOCALE, subject, self.shipped.text, self.shipped.html, "a@x.example"
        )

    def test_drafts_are_numbered_per_key_and_locale_and_change_no_mail(self) -> None:
        assert (self._draft(), self._draft()) == (1, 2)
        assert templates.save_draft(self.ctx, KEY, "fr", SUBJECT, "t", "<p>h</p>") == 1
        view = templates.show(self.ctx, KEY, LOCALE)
        assert (view["version"], view["published_version"]) == (0, 0)
        assert view["subject"] == self.shipped.subject
        assert [(d["version"], d["published"]) for d in view["drafts"]] == [
            (1, False),
            (2, False),
        ]

    def test_an_invalid_draft_is_refused_and_not_stored(self) -> None:
        with pytest.raises(templates.TemplateInvalid) as raised:
            self._draft("Order {{ order.external_id")
        assert raised.value.problems[0].part == "subject"
        assert templates.show(self.ctx, KEY, LOCALE)["drafts"] == []

    def test_publish_then_rollback_to_the_shipped_files(self) -> None:
        version = self._draft()
        shown = templates.publish(self.ctx, KEY, LOCALE, version)
        assert (shown["version"], shown["subject"]) == (1, SUBJECT)
        assert self.ctx.overrides.invalidations == 1  # type: ignore[attr-defined]
        assert templates.preview(self.ctx, KEY, LOCALE)["subject"].endswith(": on its way soon")
        rows = {(r["key"], r["locale"]): r for r in templates.list_templates(self.ctx)}
        assert rows[(KEY, LOCALE)]["published_version"] == 1
        assert rows[(KEY, LOCALE)]["latest_version"] == 1
        assert rows[(KEY, "fr")]["published_version"] == 0

        rolled_back = templates.publish(self.ctx, KEY, LOCALE, 0)
        assert (rolled_back["version"], rolled_back["subject"]) == (0, self.shipped.subject)
        assert rolled_back["drafts"][0]["published"] is False

    def test_publishing_a_missing_or_negative_version_is_refused(self) -> None:
        with pytest.raises(NotFound, match=f"{KEY}/{LOCALE} has no version 3"):
            templates.publish(self.ctx, KEY, LOCALE, 3)
        with pytest.raises(InvalidInput):
            templates.publish(self.ctx, KEY, LOCALE, -1)
        assert self.versions.published() == {}

    def test_a_changed_shipped_default_is_noticed_and_shown(self) -> None:
        version = self._draft()
        templates.publish(self.ctx, KEY, LOCALE, version)
        assert not templates.show(self.ctx, KEY, LOCALE)["default_changed"]
        # As if the draft had been edited from an older release's subject.
        [row] = self.versions.versions_by_key[(KEY, LOCALE)]
        self.versions.versions_by_key[(KEY, LOCALE)] = [
            replace(row, base_digest="older", base_subject="Your order is confirmed")
        ]
        assert templates.show(self.ctx, KEY, LOCALE)["default_changed"]
        assert next(
            r
            for r in templates.list_templates(self.ctx)
            if r["key"] == KEY and r["locale"] == LOCALE
        )["default_changed"]
        drift = templates.diff(self.ctx, KEY, LOCALE, version)
        assert drift["default_changed"]
        assert "-Your order is confirmed" in drift["diff"]["subject"]
        assert drift["diff"]["text"] == ""

    def test_unknown_keys_and_locales(self) -> None:
        with pytest.raises(NotFound, match="no email key 'nope'"):
            templates.show(self.ctx, "nope", LOCALE)
        with pytest.raises(NotFound, match="no locale 'de'"):
            templates.show(self.ctx, KEY, "de")
