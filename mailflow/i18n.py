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
        # Seller pages (/seller/…)
        "seller.brand": "Espace vendeur",
        "seller.nav.sales": "Toutes les commandes",
        "seller.nav.stats": "Mon taux d'annulation",
        "seller.nav.logout": "Se déconnecter",
        "seller.login.title": "Connexion à votre espace vendeur",
        "seller.login.intro": (
            "Indiquez l'adresse e-mail de votre compte vendeur : nous vous envoyons un lien de "
            "connexion, valable 15 minutes et utilisable une seule fois."
        ),
        "seller.login.email": "Adresse e-mail",
        "seller.login.submit": "Recevoir un lien de connexion",
        "seller.login.bad_email": "Cette adresse e-mail n'est pas valide.",
        "seller.login.no_email": "Indiquez votre adresse e-mail.",
        "seller.login.sent.title": "Vérifiez votre messagerie",
        "seller.login.sent.body": (
            "Si un compte vendeur correspond à {email}, un lien de connexion vient de lui être "
            "envoyé. Il est valable {minutes} minutes et ne sert qu'une fois."
        ),
        "seller.login.sent.again": (
            "Rien reçu ? Vérifiez vos courriers indésirables, ou demandez un nouveau lien."
        ),
        "seller.login.again": "Demander un nouveau lien de connexion",
        "seller.login.limited.title": "Trop de demandes",
        "seller.login.limited.body": (
            "Trop de liens de connexion ont été demandés. Réessayez dans {minutes} minutes."
        ),
        "seller.login.confirm.title": "Se connecter à « Toutes les commandes »",
        "seller.login.confirm.body": (
            "Vous allez vous connecter à l'espace vendeur de {name}. Ce lien ne sert qu'une fois."
        ),
        "seller.login.confirm.button": "Me connecter",
        "seller.login.invalid.title": "Lien de connexion invalide",
        "seller.login.invalid.body": (
            "Ce lien de connexion n'est pas valide. Utilisez le lien exact reçu par e-mail, ou "
            "demandez-en un nouveau."
        ),
        "seller.login.expired.title": "Lien de connexion expiré",
        "seller.login.expired.body": (
            "Ce lien de connexion a expiré : il n'est valable que 15 minutes. Demandez-en un "
            "nouveau."
        ),
        "seller.login.used.title": "Lien de connexion déjà utilisé",
        "seller.login.used.body": (
            "Ce lien de connexion a déjà servi : chaque lien ne fonctionne qu'une fois. "
            "Demandez-en un nouveau."
        ),
        "seller.login.welcome": "Bonjour {name}, vous êtes connecté(e).",
        "seller.logout.done": "Vous êtes déconnecté(e).",
        "seller.sales.title": "Toutes les commandes",
        "seller.sales.filter.status": "État",
        "seller.sales.filter.all": "Tous les états",
        "seller.sales.filter.search": "Rechercher",
        "seller.sales.filter.search_hint": "Titre, référence (SKU), n° de commande ou de vente",
        "seller.sales.filter.submit": "Filtrer",
        "seller.sales.filter.reset": "Tout afficher",
        "seller.sales.count": "Ventes trouvées : {count}",
        "seller.sales.empty": "Aucune vente ne correspond.",
        "seller.sales.accept_before": "à accepter avant le {when}",
        "seller.col.sale": "Vente",
        "seller.col.date": "Date",
        "seller.col.order": "Commande",
        "seller.col.when": "Quand",
        "seller.col.event": "Événement",
        "seller.col.by": "Par",
        "seller.pager.label": "Pages",
        "seller.pager.prev": "← Page précédente",
        "seller.pager.next": "Page suivante →",
        "seller.pager.page": "Page {page} sur {pages}",
        "seller.sale.number": "n° {id}",
        "seller.sale.title": "Vente n° {id}",
        "seller.sale.back": "Toutes les commandes",
        "seller.sale.facts": "La vente",
        "seller.sale.actions": "Que voulez-vous faire ?",
        "seller.sale.nothing_to_do": "Il n'y a rien à faire sur cette vente.",
        "seller.sale.refuse.body": (
            "L'article n'est plus disponible ? Refusez la vente : l'acheteur est prévenu et "
            "n'est pas débité. Un refus pour rupture de stock retire l'annonce de la vente."
        ),
        "seller.sale.cancel.summary": "Annuler la vente de cet article",
        "seller.sale.cancel.body": (
            "Le service client est prévenu et rembourse l'acheteur ; votre paiement est annulé "
            "et la commission reste due. Cette annulation compte dans votre taux d'annulation. "
            "Si c'est l'acheteur qui renonce à son achat, passez plutôt par le service client : "
            "une rétractation ne compte pas et ne coûte pas de commission."
        ),
        "seller.sale.cancel.reason": "Motif d'annulation (communiqué à l'acheteur)",
        "seller.sale.cancel.message": "Message à l'acheteur (conseillé)",
        "seller.sale.cancel.message_hint": (
            "{max} caractères au plus. Un message personnel aide l'acheteur à comprendre ; il "
            "le reçoit tel quel, en texte."
        ),
        "seller.sale.cancel.preview": "Voir l'e-mail que recevra l'acheteur",
        "seller.label.sku": "Référence (SKU)",
        "seller.label.created": "Commandée le",
        "seller.label.message": "Message à l'acheteur",
        "seller.label.payment": "Paiement",
        "seller.payment.authorized": "autorisé (carte non débitée)",
        "seller.payment.captured": "débité",
        "seller.payment.released": "libéré (l'acheteur n'est pas débité)",
        "seller.payment.refunded": "remboursé à l'acheteur",
        "seller.form.bad_reason": "Choisissez un motif dans la liste.",
        "seller.form.bad_message": (
            "Le message contient des caractères de contrôle : retirez-les et recommencez."
        ),
        "seller.form.too_long": (
            "Le message fait {length} caractères : {max} au plus. Raccourcissez-le."
        ),
        "seller.preview.title": "Aperçu de l'e-mail à l'acheteur",
        "seller.preview.intro": (
            "Si vous confirmez l'annulation de la vente n° {id} (« {title} »), {buyer} recevra "
            "cet e-mail :"
        ),
        "seller.preview.email": "L'e-mail",
        "seller.preview.subject": "Objet :",
        "seller.preview.warning": (
            "L'annulation est définitive : l'acheteur est remboursé et elle compte dans votre "
            "taux d'annulation."
        ),
        "seller.preview.confirm": "Confirmer l'annulation de la vente",
        "seller.preview.keep": "Ne pas annuler, revenir à la vente",
        "seller.preview.edit": "Modifier le motif ou le message",
        "seller.done.accept": "La vente est acceptée. L'acheteur en est informé.",
        "seller.done.refuse": "La vente est refusée. L'acheteur en est informé.",
        "seller.done.cancel": (
            "La vente est annulée. L'acheteur reçoit votre message et sera remboursé ; le "
            "service client est prévenu."
        ),
        "seller.already": "Rien n'a changé : cette vente est déjà {status}.",
        "seller.events.title": "Historique",
        "seller.event.create": "commande reçue",
        "seller.event.accept": "acceptation",
        "seller.event.refuse": "refus",
        "seller.event.ship": "expédition",
        "seller.event.cancel": "annulation",
        "seller.event.withdraw": "rétractation",
        "seller.event.expire": "expiration du délai",
        "seller.actor.seller": "vous",
        "seller.actor.buyer": "l'acheteur",
        "seller.actor.support": "le service client",
        "seller.actor.system": "mailflow",
        "seller.actor.api": "la place de marché",
        "seller.channel.email-link": "lien de l'e-mail",
        "seller.channel.portal": "espace vendeur",
        "seller.channel.api": "API",
        "seller.channel.cli": "console",
        "seller.channel.sweep": "automatique",
        "seller.stats.title": "Mon taux d'annulation",
        "seller.stats.rate": "Taux d'annulation",
        "seller.stats.window": "sur les {days} derniers jours",
        "seller.stats.tier": "Niveau",
        "seller.stats.counts": "Ventes de la période",
        "seller.stats.counted": "Ventes comptées",
        "seller.stats.cancelled": "Annulations",
        "seller.stats.refused": "Refus et expirations",
        "seller.stats.withdrawn": "Rétractations (non comptées)",
        "seller.stats.advice": (
            "Conservez un taux d'annulation inférieur à {threshold} pour éviter une suspension "
            "temporaire de votre compte. Refuser une vente avant de l'accepter vaut toujours "
            "mieux que l'annuler ensuite ; tenez vos annonces à jour."
        ),
        "seller.stats.few": (
            "En dessous de {min} ventes comptées sur la période, il n'y a ni alerte ni suspension."
        ),
        "seller.stats.suspended_until": "Suspension jusqu'au {when}.",
        "seller.stats.counting": "Les ventes qui comptent dans votre taux",
        "seller.stats.none": "Aucune vente ne compte dans votre taux en ce moment.",
        "seller.tier.ok": "Bon",
        "seller.tier.warning": "À surveiller",
        "seller.tier.over": "Au-dessus du seuil",
        "seller.tier.suspended": "Compte suspendu",
        "seller.tier_help.ok": "Votre taux est sous la zone d'alerte.",
        "seller.tier_help.warning": "Votre taux approche du seuil de {threshold}.",
        "seller.tier_help.over": (
            "Votre taux atteint ou dépasse {threshold} : sans amélioration, le compte sera "
            "suspendu."
        ),
        "seller.tier_help.suspended": "Votre compte est temporairement suspendu.",
        "seller.tier_notice.warning": "Votre taux d'annulation approche du seuil.",
        "seller.tier_notice.over": "Votre taux d'annulation dépasse le seuil autorisé.",
        "seller.tier_notice.suspended": "Votre compte est temporairement suspendu.",
        "seller.chart.title": (
            "Taux d'annulation sur {window} jours glissants, jour par jour ({days} derniers jours)"
        ),
        "seller.chart.desc": (
            "Le seuil de {threshold} est tracé en pointillés rouges ; la zone d'alerte, de "
            "{warning} au seuil, est ombrée. Taux actuel : {rate}."
        ),
        "seller.chart.rate": "Votre taux",
        "seller.chart.threshold": "Seuil : {threshold}",
        "seller.chart.warning": "Zone d'alerte ({warning} à {threshold})",
        "seller.chart.few": "Moins de {min} ventes comptées",
        "seller.chart.point": "{when} : {rate} ({count} ventes comptées)",
        "seller.chart.data": "Voir les valeurs jour par jour",
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
        # Seller pages (/seller/…)
        "seller.brand": "Seller account",
        "seller.nav.sales": "All orders",
        "seller.nav.stats": "My cancellation rate",
        "seller.nav.logout": "Sign out",
        "seller.login.title": "Sign in to your seller account",
        "seller.login.intro": (
            "Enter the email address of your seller account: we send you a sign-in link, valid "
            "for 15 minutes and usable once."
        ),
        "seller.login.email": "Email address",
        "seller.login.submit": "Send me a sign-in link",
        "seller.login.bad_email": "This email address is not valid.",
        "seller.login.no_email": "Enter your email address.",
        "seller.login.sent.title": "Check your inbox",
        "seller.login.sent.body": (
            "If a seller account matches {email}, a sign-in link has just been sent to it. It is "
            "valid for {minutes} minutes and works once."
        ),
        "seller.login.sent.again": (
            "Nothing arrived? Check your spam folder, or ask for a new link."
        ),
        "seller.login.again": "Ask for a new sign-in link",
        "seller.login.limited.title": "Too many requests",
        "seller.login.limited.body": (
            "Too many sign-in links were requested. Try again in {minutes} minutes."
        ),
        "seller.login.confirm.title": "Sign in to your order list",
        "seller.login.confirm.body": (
            "You are signing in to the seller account of {name}. This link works once."
        ),
        "seller.login.confirm.button": "Sign me in",
        "seller.login.invalid.title": "Invalid sign-in link",
        "seller.login.invalid.body": (
            "This sign-in link is not valid. Use the exact link from the email, or ask for a "
            "new one."
        ),
        "seller.login.expired.title": "Sign-in link expired",
        "seller.login.expired.body": (
            "This sign-in link has expired: it is valid for 15 minutes only. Ask for a new one."
        ),
        "seller.login.used.title": "Sign-in link already used",
        "seller.login.used.body": (
            "This sign-in link has been used already: each link works once. Ask for a new one."
        ),
        "seller.login.welcome": "Hello {name}, you are signed in.",
        "seller.logout.done": "You are signed out.",
        "seller.sales.title": "All orders",
        "seller.sales.filter.status": "Status",
        "seller.sales.filter.all": "All statuses",
        "seller.sales.filter.search": "Search",
        "seller.sales.filter.search_hint": "Title, SKU, order or sale number",
        "seller.sales.filter.submit": "Filter",
        "seller.sales.filter.reset": "Show all",
        "seller.sales.count": "Sales found: {count}",
        "seller.sales.empty": "No sale matches.",
        "seller.sales.accept_before": "accept before {when}",
        "seller.col.sale": "Sale",
        "seller.col.date": "Date",
        "seller.col.order": "Order",
        "seller.col.when": "When",
        "seller.col.event": "Event",
        "seller.col.by": "By",
        "seller.pager.label": "Pages",
        "seller.pager.prev": "← Previous page",
        "seller.pager.next": "Next page →",
        "seller.pager.page": "Page {page} of {pages}",
        "seller.sale.number": "no. {id}",
        "seller.sale.title": "Sale no. {id}",
        "seller.sale.back": "All orders",
        "seller.sale.facts": "The sale",
        "seller.sale.actions": "What do you want to do?",
        "seller.sale.nothing_to_do": "There is nothing to do on this sale.",
        "seller.sale.refuse.body": (
            "The article is no longer available? Refuse the sale: the buyer is told and is not "
            "charged. A refusal for lack of stock takes the listing off sale."
        ),
        "seller.sale.cancel.summary": "Cancel the sale of this article",
        "seller.sale.cancel.body": (
            "Customer service is told and refunds the buyer; your payment is cancelled and the "
            "commission is still charged. This cancellation counts in your cancellation rate. "
            "If the buyer is the one who changed their mind, go through customer service "
            "instead: a withdrawal does not count and carries no commission."
        ),
        "seller.sale.cancel.reason": "Reason for cancelling (told to the buyer)",
        "seller.sale.cancel.message": "Message to the buyer (recommended)",
        "seller.sale.cancel.message_hint": (
            "Up to {max} characters. A personal message helps the buyer understand; it is sent "
            "as is, as plain text."
        ),
        "seller.sale.cancel.preview": "See the email the buyer will get",
        "seller.label.sku": "SKU",
        "seller.label.created": "Ordered on",
        "seller.label.message": "Message to the buyer",
        "seller.label.payment": "Payment",
        "seller.payment.authorized": "authorized (card not charged)",
        "seller.payment.captured": "charged",
        "seller.payment.released": "released (the buyer is not charged)",
        "seller.payment.refunded": "refunded to the buyer",
        "seller.form.bad_reason": "Choose a reason from the list.",
        "seller.form.bad_message": (
            "The message contains control characters: remove them and try again."
        ),
        "seller.form.too_long": (
            "The message is {length} characters long: {max} at most. Please shorten it."
        ),
        "seller.preview.title": "Preview of the email to the buyer",
        "seller.preview.intro": (
            'If you confirm the cancellation of sale no. {id} ("{title}"), {buyer} will get '
            "this email:"
        ),
        "seller.preview.email": "The email",
        "seller.preview.subject": "Subject:",
        "seller.preview.warning": (
            "Cancelling is final: the buyer is refunded and it counts in your cancellation rate."
        ),
        "seller.preview.confirm": "Confirm: cancel the sale",
        "seller.preview.keep": "Do not cancel, back to the sale",
        "seller.preview.edit": "Change the reason or the message",
        "seller.done.accept": "The sale is accepted. The buyer has been told.",
        "seller.done.refuse": "The sale is refused. The buyer has been told.",
        "seller.done.cancel": (
            "The sale is cancelled. The buyer gets your message and will be refunded; customer "
            "service has been told."
        ),
        "seller.already": "Nothing changed: this sale is already {status}.",
        "seller.events.title": "History",
        "seller.event.create": "order received",
        "seller.event.accept": "accepted",
        "seller.event.refuse": "refused",
        "seller.event.ship": "shipped",
        "seller.event.cancel": "cancelled",
        "seller.event.withdraw": "withdrawal",
        "seller.event.expire": "deadline passed",
        "seller.actor.seller": "you",
        "seller.actor.buyer": "the buyer",
        "seller.actor.support": "customer service",
        "seller.actor.system": "mailflow",
        "seller.actor.api": "the marketplace",
        "seller.channel.email-link": "email link",
        "seller.channel.portal": "seller account",
        "seller.channel.api": "API",
        "seller.channel.cli": "console",
        "seller.channel.sweep": "automatic",
        "seller.stats.title": "My cancellation rate",
        "seller.stats.rate": "Cancellation rate",
        "seller.stats.window": "over the last {days} days",
        "seller.stats.tier": "Standing",
        "seller.stats.counts": "Sales in the period",
        "seller.stats.counted": "Sales counted",
        "seller.stats.cancelled": "Cancellations",
        "seller.stats.refused": "Refusals and expiries",
        "seller.stats.withdrawn": "Withdrawals (not counted)",
        "seller.stats.advice": (
            "Keep your cancellation rate under {threshold} to avoid a temporary suspension of "
            "your account. Refusing a sale before accepting it is always better than cancelling "
            "it afterwards; keep your listings up to date."
        ),
        "seller.stats.few": (
            "Below {min} counted sales in the period there is no alert and no suspension."
        ),
        "seller.stats.suspended_until": "Suspended until {when}.",
        "seller.stats.counting": "The sales that count in your rate",
        "seller.stats.none": "No sale counts in your rate at the moment.",
        "seller.tier.ok": "Good",
        "seller.tier.warning": "Watch out",
        "seller.tier.over": "Over the threshold",
        "seller.tier.suspended": "Account suspended",
        "seller.tier_help.ok": "Your rate is below the warning band.",
        "seller.tier_help.warning": "Your rate is getting close to the {threshold} threshold.",
        "seller.tier_help.over": (
            "Your rate is at or over {threshold}: without improvement, the account will be "
            "suspended."
        ),
        "seller.tier_help.suspended": "Your account is temporarily suspended.",
        "seller.tier_notice.warning": "Your cancellation rate is getting close to the threshold.",
        "seller.tier_notice.over": "Your cancellation rate is over the allowed threshold.",
        "seller.tier_notice.suspended": "Your account is temporarily suspended.",
        "seller.chart.title": (
            "Cancellation rate over a rolling {window} days, day by day (last {days} days)"
        ),
        "seller.chart.desc": (
            "The {threshold} threshold is the dashed red line; the warning band, from {warning} "
            "to the threshold, is shaded. Current rate: {rate}."
        ),
        "seller.chart.rate": "Your rate",
        "seller.chart.threshold": "Threshold: {threshold}",
        "seller.chart.warning": "Warning band ({warning} to {threshold})",
        "seller.chart.few": "Fewer than {min} counted sales",
        "seller.chart.point": "{when}: {rate} ({count} sales counted)",
        "seller.chart.data": "See the values day by day",
        # The admin console (English only: console pages render in "en").
        "admin.nav.templates": "Templates",
        "admin.nav.sellers": "Sellers",
        "admin.nav.sales": "Sales",
        "admin.nav.outbox": "Outbox",
        "admin.nav.inbox": "Inbox",
        "admin.nav.logout": "Sign out",
        "admin.login.title": "Sign in to the mailflow console",
        "admin.login.failed": "Wrong email or password.",
        "admin.login.limited": "Too many sign-in attempts: wait a few minutes and try again.",
        "admin.login.welcome": "Signed in as {email} ({role}).",
        "admin.logout.done": "Signed out.",
        "admin.forbidden.title": "Not allowed",
        "admin.forbidden.templates": (
            "Templates are edited by admins; your role is {role}. Ask an admin to change one."
        ),
        "admin.notfound.title": "Not found",
        "admin.invalid.title": "Bad request",
        "admin.templates.saved": (
            "Draft version {version} saved. No email uses it until it is published."
        ),
        "admin.templates.unchanged": "No changes to version {version}: nothing was saved.",
        "admin.templates.published": (
            "Version {version}{shipped} published: the next {email_key} emails in "
            "{email_locale} use it."
        ),
        "admin.templates.rolled_back": (
            "Rolled back to version {version}{shipped}: the next {email_key} emails in "
            "{email_locale} use it."
        ),
        "admin.templates.shipped_note": " (the shipped default)",
        "admin.templates.not_published": "Version {version} was not published: {problems}",
        "admin.templates.bad_version": "Choose a version to publish.",
        "admin.templates.bad_sale": "“{value}” is not a sale number.",
        "admin.templates.bad_address": "“{value}” is not an email address.",
        "admin.templates.test_sent": "Test email queued to {to} (outbox message #{id}).",
        "admin.templates.not_sent": "The test email could not be rendered: {error}",
        "admin.sale.title": "Sale #{id}",
        "admin.withdraw.done": (
            "The buyer's withdrawal is recorded: the buyer is refunded (or not charged) and "
            "told by email. It does not count in the seller's rate."
        ),
        "admin.withdraw.already": "The sale was already withdrawn: nothing was sent again.",
        "admin.withdraw.impossible": "No withdrawal recorded: {problem}.",
        "admin.withdraw.bad_note": "No withdrawal recorded: the note {problem}.",
        "admin.outbox.message": "Outbox message #{id}",
        "admin.outbox.retried": "Message #{id} is queued again and will be delivered shortly.",
        "admin.inbox.message": "Inbox message #{id}",
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
