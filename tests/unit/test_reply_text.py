"""The new text of a reply: quoted history (French and English mail programs), signatures,
HTML-only replies, the size limit; and whatever the bytes, no exception."""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailflow.domain.conversation import command_of
from mailflow.domain.sales import Action
from mailflow.inbound.autoreply import is_auto_reply
from mailflow.inbound.newtext import MAX_CHARS, extract, html_to_text, new_text
from mailflow.inbound.sender import Trust, check

GMAIL_FR = (
    "Bonjour,\r\n\r\nJe peux l'expédier demain matin en lettre suivie.\r\n\r\n"
    "Cordialement,\r\nJean Dupont\r\nLibrairie Dupont\r\n\r\n"
    "Le jeu. 26 nov. 2026 à 14:30, Marketplace <\r\n"
    "reply+c.b-abcdefghijklmnop@reply.market.example> a écrit :\r\n\r\n"
    "> Bonjour Éloïse,\r\n> Le vendeur vous écrit\r\n>\r\n> --\r\n> Marketplace\r\n"
)
OUTLOOK_EN = (
    "Yes, it ships tomorrow.\r\n\r\n-- \r\nJean Dupont\r\n+33 6 12 34 56 78\r\n\r\n"
    "________________________________\r\nFrom: Marketplace <no-reply@marketplace.example>\r\n"
    "Sent: Thursday, November 26, 2026 2:30 PM\r\nTo: Jean Dupont <jean@example.org>\r\n"
    "Subject: New sale no. 12\r\n\r\nHello Jean,\r\nYou have sold an article.\r\n"
)
OUTLOOK_FR = (
    "Merci, c'est noté.\r\n\r\n"
    "De : Marketplace <no-reply@marketplace.example>\r\nEnvoyé : jeudi 26 novembre 2026 14:30\r\n"
    "À : Jean Dupont\r\nObjet : Nouvelle vente\r\n\r\nBonjour Jean,\r\n"
)


def _message(text: str | None = None, html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "seller@example.org"
    if text is not None:
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
    elif html is not None:
        message.set_content(html, subtype="html")
    return message


def test_a_french_gmail_reply_gives_only_the_new_text() -> None:
    assert new_text(_message(GMAIL_FR)) == (
        "Bonjour,\n\nJe peux l'expédier demain matin en lettre suivie."
    )


def test_an_outlook_reply_in_english_drops_the_signature_and_the_history() -> None:
    assert extract(OUTLOOK_EN) == "Yes, it ships tomorrow."


def test_an_outlook_reply_in_french_drops_the_history() -> None:
    assert extract(OUTLOOK_FR) == "Merci, c'est noté."


def test_original_message_separators_in_both_languages() -> None:
    assert extract("Oui.\n-----Message d'origine-----\nDe : x\nvieux") == "Oui."
    assert extract("Yes.\n-----Original Message-----\nFrom: x\nold") == "Yes."


def test_quoted_lines_are_dropped_and_hyphen_lists_kept() -> None:
    text = "Two things:\n- the box\n- the receipt\n> quoted\nThanks"
    assert extract(text) == "Two things:\n- the box\n- the receipt\nThanks"


def test_an_html_only_reply_is_turned_into_text_without_its_quote() -> None:
    html = (
        "<html><head><style>p{color:red}</style></head><body>"
        "<div dir='ltr'>Bonjour,<br>C'est <b>envoyé</b> &amp; suivi.</div>"
        "<div class='gmail_quote'><div class='gmail_attr'>Le jeu. 26 nov. a écrit :</div>"
        "<blockquote>Nouvelle vente</blockquote></div></body></html>"
    )
    assert new_text(_message(html=html)) == "Bonjour,\nC'est envoyé & suivi."


def test_outlook_html_stops_at_its_reply_marker() -> None:
    html = "<div>Ok</div><hr id='stopSpelling'><div id='divRplyFwdMsg'>From: x</div><p>old</p>"
    assert html_to_text(html).strip() == "Ok"


def test_the_plain_part_is_preferred_to_the_html_one() -> None:
    assert new_text(_message("plain words", "<p>html words</p>")) == "plain words"


def test_at_most_ten_thousand_characters_are_kept() -> None:
    assert len(extract("abcde" * 4000)) == MAX_CHARS
    assert len(extract("a line\n" * 3000)) <= MAX_CHARS


def test_a_reply_with_only_the_history_has_no_new_text() -> None:
    assert extract("\n\nLe lun. 30 nov. 2026 à 10:12, X <x@y> a écrit :\n> old\n") == ""


def test_a_charset_python_does_not_know_is_read_as_utf8() -> None:
    raw = b"From: a@b\r\nContent-Type: text/plain; charset=x-unknown-9\r\n\r\ncaf\xc3\xa9\r\n"
    message = BytesParser(policy=default).parsebytes(raw)
    assert new_text(message) == "café"


def test_command_words() -> None:
    assert command_of("REFUSER\n\nLe … a écrit :") is Action.REFUSE
    assert command_of("\n  refuse.  \n") is Action.REFUSE
    assert command_of("Accepter") is Action.ACCEPT
    assert command_of("ACCEPTÉ") is None
    assert command_of("accepté") is None
    assert command_of("ÀCCEPTER") is Action.ACCEPT  # accents optional
    assert command_of("*ACCEPT*") is Action.ACCEPT
    assert command_of("Je refuse") is None
    assert command_of("REFUSER la vente") is None
    assert command_of("") is None


_HEADERS = st.sampled_from(
    [
        b"",
        b"Authentication-Results: mx; dmarc=pass\r\nFrom: =?utf-8?q?a=0Ab?= <a@b>\r\n",
        b"Auto-Submitted: =?utf-8?b?/w==?=\r\nFrom: <>\r\n",
        b"Content-Type: text/html; charset=utf-8\r\n",
        b"Content-Type: multipart/alternative; boundary=b\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b'Content-Type: text/plain; charset="\xff"\r\n',
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=_HEADERS, body=st.binary(max_size=3000), text=st.text(max_size=600))
def test_random_inbound_bytes_never_raise(headers: bytes, body: bytes, text: str) -> None:
    raw = b"From: x@y\r\n" + headers + b"\r\n" + body + text.encode("utf-8", "surrogatepass")
    message = BytesParser(policy=default).parsebytes(raw)
    result = new_text(message)
    assert isinstance(result, str)
    assert len(result) <= MAX_CHARS
    # The whole reading of a reply: automatic or not, the sender check, never an exception.
    is_auto_reply(message, "x@y")
    check(message, "x@y", "127.0.0.1", Trust(("127.0.0.1/32",), "mx", require_dmarc=True))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=2000))
def test_random_text_never_raises(text: str) -> None:
    assert len(extract(text)) <= MAX_CHARS
    html_to_text(text)
