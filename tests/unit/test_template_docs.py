"""``docs/templates.md`` says what the code gives the templates: its context tables are
generated from ``mailflow.mail.contexts`` and must be regenerated when a context changes."""

from __future__ import annotations

from dataclasses import fields

from mailflow.mail import contexts, docs
from mailflow.mail.catalog import KINDS


def test_the_page_is_up_to_date() -> None:
    current = docs.PAGE.read_text(encoding="utf-8")
    assert docs.page(current) == current, "run: python -m mailflow.mail.docs"


def test_every_variable_of_every_key_is_documented() -> None:
    shown = docs.generated()
    for kind in KINDS.values():
        assert f"`{kind.key}`" in shown
        for name, group in contexts.groups(kind.context):
            if group is None:
                assert f"| `{name}` |" in shown
            else:
                for f in fields(group):
                    assert f"| `{name}.{f.name}` |" in shown, (kind.key, name, f.name)


def test_the_variable_list_comes_from_the_context_class() -> None:
    kind = KINDS["seller_new_sale"]
    assert kind.variables["links"] == "accept, refuse, view"
    assert isinstance(kind.example, contexts.SaleOrderEmail)
    assert kind.sample["links"]["refuse"] == kind.example.links.refuse
