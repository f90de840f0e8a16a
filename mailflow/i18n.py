"""Words shown to people outside email templates: page texts, status names, hints (fr, en).

Email wording lives in the templates, per locale, where admins can edit it; these are the few
fixed strings of the pages and the API's hints, kept in one catalog so both languages stay
side by side.
"""

from __future__ import annotations

from mailflow.domain.sales import Action, SaleStatus
from mailflow.mail.formatting import DEFAULT_LOCALE, pick_locale

CATALOG: dict[str, dict[str, str]] = {
    "fr": {
        "status.pending": "en attente d'acceptation",
        "status.accepted": "acceptée",
        "status.refused": "refusée",
        "status.shipped": "expédiée",
        "status.cancelled": "annulée",
        "status.withdrawn": "rétractée",
        "status.expired": "expirée",
        "reason.out_of_stock": "article en rupture de stock",
        "reason.cannot_ship": "expédition impossible",
        "reason.pricing_error": "erreur de prix",
        "reason.other": "autre raison",
        "confirm.refuse.title": "Refuser cette vente ?",
        "confirm.refuse.body": (
            "Confirmez que l'article n'est plus disponible. L'acheteur sera prévenu et ne sera "
            "pas débité ; l'annonce sera retirée de la vente."
        ),
        "confirm.refuse.button": "Confirmer : l'article n'est plus disponible",
        "confirm.accept.title": "Accepter cette vente ?",
        "confirm.accept.body": (
            "En acceptant la vente, vous déclenchez le débit de la carte de l'acheteur. "
            "Vous vous engagez à expédier l'article."
        ),
        "confirm.accept.button": "Accepter la vente",
        "view.title": "Vente n° {sale_id}",
        "view.refuse": "Cliquez ici si l'article n'est plus disponible",
        "view.accept": "Accepter la vente",
        "done.refuse": "La vente a été refusée. L'acheteur en est informé.",
        "done.accept": "La vente est acceptée. L'acheteur en est informé.",
        "already": "Cette vente est déjà {status} depuis le {when}. Rien de plus à faire.",
        "conflict": "Impossible : cette vente est {status}.",
        "invalid.title": "Lien invalide",
        "invalid.body": "Ce lien n'est pas valide. Utilisez le lien exact reçu par e-mail.",
        "expired.title": "Lien expiré",
        "expired.body": (
            "Ce lien a expiré. Connectez-vous à votre compte pour retrouver la vente dans "
            "« Toutes les commandes »."
        ),
        "expired.login": "Recevoir un lien de connexion",
        "portal.skip": "Aller au contenu",
        "portal.nav": "Navigation",
        "forbidden.title": "Action refusée",
        "forbidden.body": (
            "Le formulaire a expiré ou ne vient pas de cette page. Rechargez la page et "
            "recommencez."
        ),
        "notfound.title": "Vente introuvable",
        "notfound.body": "Cette vente n'existe pas ou plus.",
        "label.article": "Article",
        "label.quantity": "Quantité",
        "label.amount": "Montant",
        "label.status": "État",
        "label.buyer": "Acheteur",
        "label.deadline": "À accepter avant le",
        "label.reason": "Motif",
        "hint.refuse.accepted": (
            "La vente est déjà acceptée : annulez-la depuis « Toutes les commandes » "
            "(« Annuler la vente de cet article ») avec un message pour l'acheteur."
        ),
        "hint.cancel.pending": (
            "La vente n'est pas encore acceptée : refusez-la plutôt "
            "(« Cliquez ici si l'article n'est plus disponible »)."
        ),
        "hint.ship.pending": "Acceptez la vente avant de l'expédier.",
        "hint.refuse.shipped": "L'article est déjà expédié : contactez le service client.",
        "hint.cancel.shipped": "L'article est déjà expédié : contactez le service client.",
        "hint.closed": "La vente est close : il n'y a plus rien à faire.",
    },
    "en": {
        "status.pending": "awaiting acceptance",
        "status.accepted": "accepted",
        "status.refused": "refused",
        "status.shipped": "shipped",
        "status.cancelled": "cancelled",
        "status.withdrawn": "withdrawn",
        "status.expired": "expired",
        "reason.out_of_stock": "article out of stock",
        "reason.cannot_ship": "cannot ship",
        "reason.pricing_error": "pricing error",
        "reason.other": "other reason",
        "confirm.refuse.title": "Refuse this sale?",
        "confirm.refuse.body": (
            "Confirm that the article is no longer available. The buyer will be told and will "
            "not be charged; the listing will be taken off sale."
        ),
        "confirm.refuse.button": "Confirm: the article is no longer available",
        "confirm.accept.title": "Accept this sale?",
        "confirm.accept.body": (
            "Accepting the sale debits the buyer's card. You commit to shipping the article."
        ),
        "confirm.accept.button": "Accept the sale",
        "view.title": "Sale no. {sale_id}",
        "view.refuse": "Click here if the article is no longer available",
        "view.accept": "Accept the sale",
        "done.refuse": "The sale is refused. The buyer has been told.",
        "done.accept": "The sale is accepted. The buyer has been told.",
        "already": "This sale has been {status} since {when}. Nothing more to do.",
        "conflict": "Not possible: this sale is {status}.",
        "invalid.title": "Invalid link",
        "invalid.body": "This link is not valid. Use the exact link from the email.",
        "expired.title": "Link expired",
        "expired.body": (
            "This link has expired. Sign in to your account to find the sale in your order list."
        ),
        "expired.login": "Get a sign-in link",
        "portal.skip": "Skip to content",
        "portal.nav": "Navigation",
        "forbidden.title": "Action refused",
        "forbidden.body": (
            "The form has expired or did not come from this page. Reload the page and try again."
        ),
        "notfound.title": "Sale not found",
        "notfound.body": "This sale does not exist.",
        "label.article": "Article",
        "label.quantity": "Quantity",
        "label.amount": "Amount",
        "label.status": "Status",
        "label.buyer": "Buyer",
        "label.deadline": "Accept before",
        "label.reason": "Reason",
        "hint.refuse.accepted": (
            "The sale is already accepted: cancel it from your order list instead "
            '("Cancel the sale of this article"), with a message to the buyer.'
        ),
        "hint.cancel.pending": (
            "The sale is not accepted yet: refuse it instead "
            '("Click here if the article is no longer available").'
        ),
        "hint.ship.pending": "Accept the sale before shipping it.",
        "hint.refuse.shipped": "The article has shipped: contact customer service.",
        "hint.cancel.shipped": "The article has shipped: contact customer service.",
        "hint.closed": "The sale is closed: there is nothing more to do.",
    },
}


def t(locale: str | None, key: str, **values: object) -> str:
    """The text for ``key`` in ``locale`` (falling back to the default locale)."""
    catalog = CATALOG.get(pick_locale(locale), CATALOG[DEFAULT_LOCALE])
    text = catalog.get(key) or CATALOG[DEFAULT_LOCALE][key]
    return text.format(**values) if values else text


def status_label(status: str, locale: str | None) -> str:
    return t(locale, f"status.{status}")


def hint_for(action: Action, status: SaleStatus, locale: str | None) -> str:
    """What the person can do instead, when ``action`` is impossible from ``status``."""
    key = f"hint.{action.value}.{status.value}"
    catalog = CATALOG.get(pick_locale(locale), CATALOG[DEFAULT_LOCALE])
    return catalog.get(key) or catalog["hint.closed"]
