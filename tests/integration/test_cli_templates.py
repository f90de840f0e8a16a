"""``mailflow templates``: the commands, run in-process against a SQLite file.

Every test writes its own settings file (a SQLite database in ``tmp_path``, a random secret)
and calls ``mailflow.cli.main`` as a user would. ``edit`` runs a real editor: a small Python
script set as ``$EDITOR`` that rewrites the file it is given.
"""

from __future__ import annotations

import secrets
import shlex
import string
import sys
import tempfile
from collections.abc import Callable
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from sqlalchemy import update

from mailflow.bootstrap import build
from mailflow.cli import main
from mailflow.cli.templates import parse_file
from mailflow.config import load
from mailflow.mail import catalog
from mailflow.mail.formatting import SUPPORTED_LOCALES
from mailflow.mail.templates import templates_root
from mailflow.schemas import BuyerIn, ItemIn, OrderIn, SellerIn
from mailflow.services import orders, sellers
from mailflow.store import migrate
from mailflow.store.database import Database
from mailflow.store.models import TemplateVersion

SHIPPED = templates_root() / "email"
REFUSE_URL = catalog.KINDS["seller_new_sale"].sample["links"]["refuse"]
NEW_SUBJECT = "Vente {{ sale.id }} à confirmer : {{ sale.title }}"


class Cli:
    """``mailflow templates …`` with this test's settings file; returns (status, out, err)."""

    def __init__(self, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = config
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        status = main(["templates", *args, "--config", str(self.config)])
        out, err = self.capsys.readouterr()
        return status, out, err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
    path = tmp_path / "mailflow.toml"
    path.write_text(
        "[server]\n"
        'base_url = "http://mailflow.test"\n\n'
        "[database]\n"
        f'url = "sqlite:///{tmp_path / "mailflow.db"}"\n\n'
        "[security]\n"
        f'secret_keys = ["{secret}"]\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def cli(config: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(config, capsys)


@pytest.fixture
def edit_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where ``edit`` makes its temporary file (the standard library's temp folder, moved)."""
    folder = tmp_path / "edits"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def editor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_dir: Path
) -> Callable[[str], Path]:
    """Set ``$EDITOR`` to a Python script; its body gets ``path`` (the file to edit), ``text``
    (its content), ``calls`` (1 on the first run) and writes back ``text``. Returns the
    folder where each run's input is kept as ``seen-<n>.txt``."""

    def install(body: str) -> Path:
        script = tmp_path / "editor.py"
        script.write_text(
            "import pathlib, sys\n"
            "path = pathlib.Path(sys.argv[1])\n"
            f"log = pathlib.Path({str(tmp_path)!r})\n"
            "calls = len(list(log.glob('seen-*.txt'))) + 1\n"
            "text = path.read_text(encoding='utf-8')\n"
            "(log / f'seen-{calls}.txt').write_text(str(path) + '\\n' + text, encoding='utf-8')\n"
            f"{body}\n"
            "path.write_text(text, encoding='utf-8')\n",
            encoding="utf-8",
        )
        monkeypatch.setenv("EDITOR", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")
        return tmp_path

    return install


def shipped(key: str, locale: str, part: str) -> str:
    suffix = {"subject": "subject", "text": "txt", "html": "html"}[part]
    return (SHIPPED / locale / f"{key}.{suffix}.j2").read_text(encoding="utf-8")


def write(folder: Path, name: str, content: str) -> str:
    path = folder / name
    path.write_text(content, encoding="utf-8")
    return str(path)


def table(out: str) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in out.splitlines()[1:]:
        cells = line.split()
        if len(cells) == 5:
            rows[(cells[0], cells[1])] = cells[2:]
    return rows


class TestListAndShow:
    def test_list_has_every_key_and_locale(self, cli: Cli) -> None:
        status, out, err = cli("list")
        assert status == 0, err
        assert out.splitlines()[0].split() == [
            "key",
            "locale",
            "published",
            "latest",
            "default",
            "changed",
        ]
        rows = table(out)
        assert set(rows) == {(k, loc) for k in catalog.KINDS for loc in SUPPORTED_LOCALES}
        assert rows[("seller_login_link", "fr")] == ["0", "0", "no"]

    def test_show_prints_the_published_source_and_what_the_key_provides(self, cli: Cli) -> None:
        status, out, err = cli("show", "seller_new_sale", "fr")
        assert status == 0, err
        assert "# seller_new_sale/fr version 0: the shipped default, published" in out
        assert "# variables: buyer, links, order, reply_commands, sale, seller, locale" in out
        assert "# must show: links.accept, links.refuse, links.view" in out
        parts = parse_file(out)
        for part in ("subject", "text", "html"):
            assert parts[part] == shipped("seller_new_sale", "fr", part)

    def test_show_one_part_prints_it_exactly(self, cli: Cli) -> None:
        status, out, _ = cli("show", "seller_login_link", "en", "--part", "html")
        assert status == 0
        assert out == shipped("seller_login_link", "en", "html")

    def test_show_an_unknown_version(self, cli: Cli) -> None:
        status, out, err = cli("show", "seller_new_sale", "fr", "--version", "3")
        assert status == 1 and out == ""
        assert err == "mailflow: seller_new_sale/fr has no version 3\n"


@pytest.mark.parametrize(
    "command",
    [
        ["show"],
        ["validate"],
        ["preview"],
        ["edit"],
        ["publish", "1"],
        ["rollback", "0"],
        ["diff", "1"],
    ],
)
def test_unknown_key_or_locale_is_one_line_and_exit_2(cli: Cli, command: list[str]) -> None:
    name, *rest = command
    status, out, err = cli(name, "seller_new_sael", "fr", *rest)
    assert status == 2 and out == ""
    assert err == "mailflow: no email key 'seller_new_sael' (did you mean seller_new_sale?)\n"

    status, out, err = cli(name, "seller_new_sale", "de", *rest)
    assert status == 2 and out == ""
    assert err == "mailflow: no locale 'de' (there are: fr, en)\n"


class TestValidate:
    def test_the_published_version(self, cli: Cli) -> None:
        status, out, err = cli("validate", "seller_login_link", "fr")
        assert (status, err) == (0, "")
        assert out == "seller_login_link/fr: published version 0: valid\n"

    def test_good_files(self, cli: Cli, tmp_path: Path) -> None:
        key = "seller_new_sale"
        files = {
            "subject": write(tmp_path, "s.j2", NEW_SUBJECT + "\n"),
            "text": write(tmp_path, "t.j2", shipped(key, "fr", "text").replace("Bonjour", "Salut")),
            "html": write(tmp_path, "h.j2", shipped(key, "fr", "html")),
        }
        args = [f"--{part}={path}" for part, path in files.items()]
        status, out, err = cli("validate", key, "fr", *args)
        assert (status, err) == (0, "")
        assert out == f"{key}/fr: the given subject, text, html: valid\n"

    def test_bad_files_print_part_line_and_message(self, cli: Cli, tmp_path: Path) -> None:
        text = (
            '{% extends "email/fr/_layout.txt.j2" %}\n'
            "{% block body %}Article : {{ sale.titre }}\n"
            "{{ links.refuse }} {{ coupon }}\n"
            "{% endblock %}\n"
        )
        html = shipped("seller_new_sale", "fr", "html").replace(
            "{% endblock %}", "<div>\n{% endblock %}"
        )
        status, out, err = cli(
            "validate",
            "seller_new_sale",
            "fr",
            "--text",
            write(tmp_path, "bad.txt.j2", text),
            "--html",
            write(tmp_path, "bad.html.j2", html),
        )
        assert status == 1 and out == ""
        lines = err.splitlines()
        assert lines[0].startswith("text:2: sale has no 'titre' (it has: amount_cents, ")
        assert lines[1] == (
            "text:3: seller_new_sale provides no variable 'coupon' "
            "(it has: buyer, links, order, reply_commands, sale, seller)"
        )
        # The unknown names hide nothing else: the missing links and the HTML come too (the
        # footer block has its own unclosed <div>: the 7th problem).
        assert lines[2:6] == [
            "text: must show {{ links.accept }} (seller_new_sale requires it)",
            "text: must show {{ links.view }} (seller_new_sale requires it)",
            "html:2: <div> is never closed",
            "html:19: <div> is never closed",
        ]
        assert lines[-1] == "mailflow: seller_new_sale/fr: 7 problems, nothing was changed"

    def test_a_required_link_missing_and_html_not_closed(self, cli: Cli, tmp_path: Path) -> None:
        key = "seller_new_sale"
        text = "\n".join(
            line for line in shipped(key, "fr", "text").splitlines() if "links.refuse" not in line
        )
        lines = shipped(key, "fr", "html").splitlines()
        lines.insert(4, "<div>")  # line 5, never closed
        status, _, err = cli(
            "validate",
            key,
            "fr",
            "--text",
            write(tmp_path, "t.j2", text),
            "--html",
            write(tmp_path, "h.j2", "\n".join(lines)),
        )
        assert status == 1
        assert err.splitlines() == [
            "text: must show {{ links.refuse }} (seller_new_sale requires it)",
            "html:5: <div> is never closed",
            "mailflow: seller_new_sale/fr: 2 problems, nothing was changed",
        ]

    def test_a_syntax_error(self, cli: Cli, tmp_path: Path) -> None:
        subject = write(tmp_path, "s.j2", "Vente {{ sale.id }\n")
        status, _, err = cli("validate", "seller_new_sale", "en", "--subject", subject)
        assert status == 1
        assert err.splitlines()[0].startswith("subject:1: syntax error: ")

    def test_a_missing_file(self, cli: Cli, tmp_path: Path) -> None:
        status, _, err = cli("validate", "seller_new_sale", "en", "--text", str(tmp_path / "no"))
        assert status == 2
        assert err == f"mailflow: --text {tmp_path / 'no'}: No such file or directory\n"


class TestPreview:
    def test_the_published_version_with_the_sample(self, cli: Cli) -> None:
        status, out, err = cli("preview", "seller_new_sale", "fr")
        assert status == 0, err
        parts = parse_file(out)
        assert parts["subject"] == "Nouvelle vente n° 12 : Le Petit Prince (édition 1999)\n"
        assert "Montant : 12,50\u00a0€" in parts["text"]
        assert "Cliquez ici si l'article n'est plus disponible :\n" + REFUSE_URL in parts["text"]
        assert parts["html"].startswith("<!DOCTYPE html>")
        assert "{{" not in out

    def test_one_part(self, cli: Cli) -> None:
        status, out, _ = cli("preview", "seller_login_link", "en", "--part", "text")
        assert status == 0
        assert out.startswith("Hello Librairie Dupont,\n")
        assert "valid for 15 minutes and works only once" in out

    def test_given_files(self, cli: Cli, tmp_path: Path) -> None:
        subject = write(tmp_path, "s.j2", NEW_SUBJECT)
        status, out, _ = cli("preview", "seller_new_sale", "fr", "--subject", subject)
        assert status == 0
        assert (
            parse_file(out)["subject"] == "Vente 12 à confirmer : Le Petit Prince (édition 1999)\n"
        )

    def test_given_files_with_problems(self, cli: Cli, tmp_path: Path) -> None:
        text = write(tmp_path, "t.j2", "Bonjour\n{{ seller.nom }}\n")
        status, out, err = cli("preview", "seller_login_link", "fr", "--text", text)
        assert status == 1 and out == ""
        assert err.splitlines()[0] == "text:2: seller has no 'nom' (it has: email, id, name)"

    def test_a_real_sale(self, cli: Cli, config: Path) -> None:
        system = build(load(str(config)).settings)
        try:
            migrate.upgrade(system.db.engine)
            seller = sellers.create_seller(
                system.services, SellerIn(name="Bouquinerie Lenoir", email="bl@shop.example")
            )
            result = orders.place_order(
                system.services,
                OrderIn(
                    external_id="CMD-CLI-1",
                    buyer=BuyerIn(email="b@mail.example", name="Bea"),
                    items=[
                        ItemIn(
                            seller_id=seller["id"],
                            sku="SKU-1",
                            title="Vingt mille lieues sous les mers",
                            quantity=2,
                            unit_price=Decimal("7.25"),
                        )
                    ],
                ),
                None,
            )
        finally:
            system.close()
        sale_id = result.body["sales"][0]["id"]
        status, out, err = cli("preview", "seller_new_sale", "fr", "--sale", str(sale_id))
        assert status == 0, err
        parts = parse_file(out)
        assert (
            parts["subject"] == f"Nouvelle vente n° {sale_id} : Vingt mille lieues sous les mers\n"
        )
        assert "Bonjour Bouquinerie Lenoir," in parts["text"]
        assert "Montant : 14,50\u00a0€" in parts["text"]
        assert "Commande : CMD-CLI-1" in parts["text"]
        assert "http://mailflow.test/s/" in parts["text"] and REFUSE_URL not in parts["text"]

        status, out, err = cli("preview", "seller_new_sale", "fr", "--sale", "999")
        assert status == 1 and out == ""
        assert err == "mailflow: --sale: no sale 999\n"


class TestEdit:
    def test_a_good_edit_saves_a_draft_and_publishes_nothing(
        self, cli: Cli, editor: Callable[[str], Path], edit_dir: Path
    ) -> None:
        log = editor(
            "lines = text.splitlines(keepends=True)\n"
            "lines[lines.index('### subject ###\\n') + 1] = "
            f"{NEW_SUBJECT + chr(10)!r}\n"
            "text = ''.join(lines)"
        )
        status, out, err = cli("edit", "seller_new_sale", "fr")
        assert status == 0, err
        assert out == (
            "seller_new_sale/fr: draft version 1 saved (not published; to publish it: "
            "mailflow templates publish seller_new_sale fr 1)\n"
        )
        seen = (log / "seen-1.txt").read_text(encoding="utf-8")
        edited_path, _, given = seen.partition("\n")
        assert given.startswith("# mailflow templates edit seller_new_sale fr, from version 0")
        assert "### subject ###" in given and "### text ###" in given and "### html ###" in given
        assert parse_file(given)["text"] == shipped("seller_new_sale", "fr", "text")
        assert not Path(edited_path).exists() and list(edit_dir.iterdir()) == []

        status, out, _ = cli("show", "seller_new_sale", "fr", "--version", "1", "--part", "subject")
        assert out == NEW_SUBJECT + "\n"
        status, out, _ = cli("show", "seller_new_sale", "fr", "--version", "1", "--part", "text")
        assert out == shipped("seller_new_sale", "fr", "text")
        assert table(cli("list")[1])[("seller_new_sale", "fr")] == ["0", "1", "no"]
        # A draft changes no mail.
        status, out, _ = cli("preview", "seller_new_sale", "fr", "--part", "subject")
        assert out.startswith("Nouvelle vente n° 12")

    def test_an_edit_with_a_problem_without_a_terminal(
        self, cli: Cli, editor: Callable[[str], Path], edit_dir: Path
    ) -> None:
        editor("text = text.replace('Bonjour {{ seller.name }}', 'Bonjour {{ seller.nom }}', 1)")
        status, out, err = cli("edit", "seller_login_link", "fr")
        assert status == 2 and out == ""
        lines = err.splitlines()
        assert lines[0] == "text:3: seller has no 'nom' (it has: email, id, name)"
        assert lines[1] == "stdin is not a terminal: not asking whether to edit again"
        kept = next(edit_dir.iterdir())
        assert lines[2] == (
            f"mailflow: seller_login_link/fr: 1 problem, nothing was saved; your edit is in {kept}"
        )
        assert "{{ seller.nom }}" in kept.read_text(encoding="utf-8")
        assert table(cli("list")[1])[("seller_login_link", "fr")] == ["0", "0", "no"]

    def test_edit_again_until_it_is_right(
        self,
        cli: Cli,
        editor: Callable[[str], Path],
        edit_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        log = editor(
            "if calls == 1:\n"
            "    text = text.replace('{{ login_url }}', 'https://evil.example', 1)\n"
            "else:\n"
            "    text = text.replace('Hello', 'Hi', 1)\n"
            "    text = text.replace('https://evil.example', '{{ login_url }}')"
        )
        monkeypatch.setattr(sys, "stdin", Terminal("x\ne\n"))
        status, out, err = cli("edit", "seller_login_link", "en")
        assert status == 0, err
        assert "draft version 1 saved" in out
        assert err.splitlines()[0] == (
            "text: must show {{ login_url }} (seller_login_link requires it)"
        )
        assert err.count("[e]dit again / [q]uit: ") == 2  # "x" is asked again
        second = (log / "seen-2.txt").read_text(encoding="utf-8")
        assert "# Problems found in the last save:\n#   text: must show {{ login_url }}" in second
        assert "https://evil.example" in second  # the edit is kept, not started over
        assert not (log / "seen-3.txt").exists()
        status, out, _ = cli("show", "seller_login_link", "en", "--version", "1", "--part", "text")
        assert "Hi {{ seller.name }}," in out and "{{ login_url }}" in out
        assert list(edit_dir.iterdir()) == []

    def test_quit_after_a_problem(
        self,
        cli: Cli,
        editor: Callable[[str], Path],
        edit_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        log = editor("text = text.replace('### html ###', '### HTML ###')")
        monkeypatch.setattr(sys, "stdin", Terminal("q\n"))
        status, _, err = cli("edit", "seller_login_link", "en")
        assert status == 2
        assert err.splitlines()[0] == "file: the marker line ### html ### is missing"
        assert not (log / "seen-2.txt").exists()
        assert len(list(edit_dir.iterdir())) == 1

    def test_no_change_saves_nothing(self, cli: Cli, editor: Callable[[str], Path]) -> None:
        editor("pass")
        status, out, _ = cli("edit", "buyer_sale_refused", "en")
        assert (status, out) == (0, "no changes to version 0: nothing was saved\n")
        assert table(cli("list")[1])[("buyer_sale_refused", "en")] == ["0", "0", "no"]

    def test_an_empty_file_gives_up(self, cli: Cli, editor: Callable[[str], Path]) -> None:
        editor("text = ''")
        status, out, _ = cli("edit", "buyer_sale_refused", "en")
        assert (status, out) == (0, "the file is empty: nothing was saved\n")

    def test_an_editor_that_fails(self, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("EDITOR", f"{shlex.quote(sys.executable)} -c 'raise SystemExit(3)'")
        status, _, err = cli("edit", "buyer_sale_refused", "en")
        assert status == 2
        assert err.endswith("exited with status 3; nothing was saved\n")


class Terminal(StringIO):
    """Answers typed at a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def draft(cli: Cli, editor: Callable[[str], Path]) -> int:
    """Version 1 of seller_new_sale/fr: the shipped default with another subject."""
    editor(
        "lines = text.splitlines(keepends=True)\n"
        f"lines[lines.index('### subject ###\\n') + 1] = {NEW_SUBJECT + chr(10)!r}\n"
        "text = ''.join(lines)"
    )
    status, _, err = cli("edit", "seller_new_sale", "fr")
    assert status == 0, err
    return 1


class TestPublishRollbackDiff:
    def test_publish_changes_the_mail_and_rollback_restores_it(self, cli: Cli, draft: int) -> None:
        status, out, err = cli("publish", "seller_new_sale", "fr", str(draft))
        assert (status, err) == (0, "")
        assert out == "seller_new_sale/fr: version 1 published\n"
        assert table(cli("list")[1])[("seller_new_sale", "fr")] == ["1", "1", "no"]
        status, out, _ = cli("preview", "seller_new_sale", "fr", "--part", "subject")
        assert out == "Vente 12 à confirmer : Le Petit Prince (édition 1999)\n"
        status, out, _ = cli("show", "seller_new_sale", "fr")
        assert "# seller_new_sale/fr version 1: published" in out
        # The other locale is untouched.
        status, out, _ = cli("preview", "seller_new_sale", "en", "--part", "subject")
        assert out.startswith("New sale")

        status, out, err = cli("rollback", "seller_new_sale", "fr", "0")
        assert (status, err) == (0, "")
        assert out == "seller_new_sale/fr rolled back to version 0 (the shipped default)\n"
        status, out, _ = cli("preview", "seller_new_sale", "fr", "--part", "subject")
        assert out.startswith("Nouvelle vente n° 12")
        assert table(cli("list")[1])[("seller_new_sale", "fr")] == ["0", "1", "no"]

        status, out, err = cli("rollback", "seller_new_sale", "fr", "1")
        assert status == 0
        assert cli("preview", "seller_new_sale", "fr", "--part", "subject")[1].startswith("Vente")

    def test_publish_an_unknown_version(self, cli: Cli, draft: int) -> None:
        status, out, err = cli("publish", "seller_new_sale", "fr", "2")
        assert (status, out) == (1, "")
        assert err == "mailflow: seller_new_sale/fr has no version 2\n"
        status, _, err = cli("publish", "seller_new_sale", "fr", "-1")
        assert (status, err) == (2, "mailflow: VERSION: must be 0 or more\n")

    def test_diff_when_the_default_did_not_change(self, cli: Cli, draft: int) -> None:
        status, out, _ = cli("diff", "seller_new_sale", "fr", str(draft))
        assert status == 0
        assert out == (
            "seller_new_sale/fr: the shipped default has not changed since version 1 was "
            "edited from it\n"
        )
        status, _, err = cli("diff", "seller_new_sale", "fr", "0")
        assert status == 2 and "VERSION must be 1 or more" in err

    def test_diff_and_list_after_a_release_changed_the_default(
        self, cli: Cli, draft: int, config: Path
    ) -> None:
        # Version 1 was edited from an older default: its subject was another one then.
        db = Database.from_url(load(str(config)).settings.database.url)
        try:
            with db.transaction() as session:
                session.execute(
                    update(TemplateVersion)
                    .where(TemplateVersion.key == "seller_new_sale", TemplateVersion.version == 1)
                    .values(base_subject="Vente n° {{ sale.id }}\n", base_digest="0" * 64)
                )
        finally:
            db.dispose()
        assert cli("publish", "seller_new_sale", "fr", "1")[0] == 0

        status, out, _ = cli("list")
        assert table(out)[("seller_new_sale", "fr")] == ["1", "1", "yes"]
        assert "see `mailflow templates diff KEY LOCALE VERSION`" in out
        assert (
            "# shipped default changed since this version was edited from it: yes"
            in (cli("show", "seller_new_sale", "fr")[1])
        )

        status, out, _ = cli("diff", "seller_new_sale", "fr", "1")
        assert status == 0
        assert out.splitlines() == [
            "### subject ###",
            "--- default when version 1 was edited",
            "+++ default now",
            "@@ -1 +1 @@",
            "-Vente n° {{ sale.id }}",
            "+Nouvelle vente n° {{ sale.id }} : {{ sale.title }}",
        ]
