"""The subscriber service's pages: small, in the digest's language and brand, without script.

Part of the subscriber service (`aspdigest.serve`), the end of the flow a reader sees. Each
function returns a complete HTML document as a string; `app.py` decides which one and with
what status. Every value from a person or the store is escaped here, the pages carry no
script (the service's CSP forbids it) and every form posts back to the service itself.
Texts come from `TEXTS`, per language, falling back to English for a language it lacks.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from aspdigest.config import Brand

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_ask": "Stop receiving {list} at {address}?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed_title": "You are unsubscribed",
        "unsubscribed_body": "{address} will receive no more {list}.",
        "resubscribe_button": "Subscribe again",
        "resubscribe_hint": "Changed your mind? We will send a confirmation link to your address.",
        "not_listed": "This link is for an address that is not on the list.",
        "bad_link_title": "This link does not work",
        "bad_link_body": "The link is incomplete, altered or expired. Copy the whole link "
        "from the email, or ask for a new one.",
        "check_title": "Check your inbox",
        "check_body": "If the address can receive {list}, a confirmation link is on its way. "
        "It works for 48 hours.",
        "subscribe_title": "Subscribe to {list}",
        "email_label": "Email address",
        "name_label": "Name (optional)",
        "language_label": "Language",
        "subscribe_button": "Subscribe",
        "confirm_title": "Confirm your subscription",
        "confirm_ask": "Receive {list} at {address}?",
        "confirm_button": "Confirm",
        "confirmed_title": "You are subscribed",
        "confirmed_body": "{address} will receive {list}.",
        "complained_body": "This address reported our mail as spam, so it cannot be added by "
        "this form. Please write to us.",
        "too_many_title": "Too many requests",
        "too_many_body": "Please wait a while and try again.",
        "forbidden_title": "Not accepted",
        "forbidden_body": "This form must be sent from its own page. Reload the page and try "
        "again.",
        "mail_subject": "Confirm your subscription to {list}",
        "mail_body": "Someone, hopefully you, asked to receive {list} at this address.\n\n"
        "To confirm, open this link within 48 hours and press Confirm:\n{link}\n\n"
        "If it was not you, ignore this message: nothing will be sent.\n",
    },
    "fr": {
        "unsubscribe_title": "Désinscription",
        "unsubscribe_ask": "Ne plus recevoir {list} à l’adresse {address} ?",
        "unsubscribe_button": "Me désinscrire",
        "unsubscribed_title": "Vous êtes désinscrit·e",
        "unsubscribed_body": "{address} ne recevra plus {list}.",
        "resubscribe_button": "Me réinscrire",
        "resubscribe_hint": "Vous avez changé d’avis ? Nous enverrons un lien de confirmation "
        "à votre adresse.",
        "not_listed": "Ce lien concerne une adresse qui n’est pas sur la liste.",
        "bad_link_title": "Ce lien ne fonctionne pas",
        "bad_link_body": "Le lien est incomplet, modifié ou expiré. Copiez le lien entier "
        "depuis le courriel, ou demandez-en un nouveau.",
        "check_title": "Consultez votre boîte de réception",
        "check_body": "Si l’adresse peut recevoir {list}, un lien de confirmation est en "
        "route. Il est valable 48 heures.",
        "subscribe_title": "S’abonner à {list}",
        "email_label": "Adresse électronique",
        "name_label": "Nom (facultatif)",
        "language_label": "Langue",
        "subscribe_button": "M’abonner",
        "confirm_title": "Confirmez votre abonnement",
        "confirm_ask": "Recevoir {list} à l’adresse {address} ?",
        "confirm_button": "Confirmer",
        "confirmed_title": "Vous êtes abonné·e",
        "confirmed_body": "{address} recevra {list}.",
        "complained_body": "Cette adresse a signalé nos messages comme indésirables : ce "
        "formulaire ne peut pas la réinscrire. Écrivez-nous.",
        "too_many_title": "Trop de demandes",
        "too_many_body": "Veuillez patienter un moment puis réessayer.",
        "forbidden_title": "Non accepté",
        "forbidden_body": "Ce formulaire doit être envoyé depuis sa propre page. Rechargez la "
        "page et réessayez.",
        "mail_subject": "Confirmez votre abonnement à {list}",
        "mail_body": "Quelqu’un, sans doute vous, a demandé à recevoir {list} à cette "
        "adresse.\n\nPour confirmer, ouvrez ce lien dans les 48 heures et appuyez sur "
        "Confirmer :\n{link}\n\nSi ce n’était pas vous, ignorez ce message : rien ne sera "
        "envoyé.\n",
    },
}
LANGUAGES = {"en": "English", "fr": "Français"}


def texts(language: str | None) -> dict[str, str]:
    base = (language or "en").split("-")[0].lower()
    return TEXTS.get(base, TEXTS["en"])


@dataclass(frozen=True)
class Look:
    """What every page shares: the list's name, the brand and the language."""

    list_name: str
    brand: Brand
    language: str

    def t(self, key: str, **values: str) -> str:
        """The text `key` in this language, with `values` escaped into it."""
        escaped = {k: html.escape(v) for k, v in values.items()}
        escaped.setdefault("list", html.escape(self.list_name))
        return html.escape(texts(self.language)[key]).replace("&#x27;", "'").format(**escaped)

    def with_language(self, language: str | None) -> Look:
        return Look(self.list_name, self.brand, language or self.language)


def page(look: Look, title: str, body: str) -> str:
    b = look.brand
    return f"""<!doctype html>
<html lang="{html.escape(look.language)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title} · {html.escape(look.list_name)}</title>
<style>
body {{ margin: 0; background: {b.background}; color: {b.text};
  font: 17px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }}
main {{ max-width: 32rem; margin: 3rem auto; padding: 0 1.25rem; }}
header {{ color: {b.primary}; font-weight: 600; margin-bottom: 1.5rem; }}
h1 {{ font-size: 1.5rem; line-height: 1.25; }}
button {{ background: {b.primary}; color: #fff; border: 0; border-radius: 6px;
  padding: .7rem 1.4rem; font: inherit; font-weight: 600; cursor: pointer; }}
button:focus-visible, input:focus-visible, select:focus-visible {{
  outline: 3px solid {b.accent}; outline-offset: 2px; }}
label {{ display: block; margin: 1rem 0 .3rem; font-weight: 600; }}
input, select {{ width: 100%; box-sizing: border-box; padding: .6rem; font: inherit;
  border: 1px solid #888; border-radius: 6px; }}
.note {{ font-size: .9rem; opacity: .8; }}
.error {{ color: #b00020; font-weight: 600; }}
</style>
</head>
<body><main>
<header>{html.escape(b.name or look.list_name)}</header>
<h1>{title}</h1>
{body}
</main></body>
</html>
"""


def button_form(action: str, label: str, fields: dict[str, str] | None = None) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in (fields or {}).items()
    )
    return (
        f'<form method="post" action="{html.escape(action)}">{hidden}'
        f'<button type="submit">{label}</button></form>'
    )


def unsubscribe_page(look: Look, action: str, address: str) -> str:
    return page(
        look,
        look.t("unsubscribe_title"),
        f"<p>{look.t('unsubscribe_ask', address=address)}</p>"
        + button_form(action, look.t("unsubscribe_button"), {"List-Unsubscribe": "One-Click"}),
    )


def unsubscribed_page(look: Look, address: str, resubscribe: str) -> str:
    return page(
        look,
        look.t("unsubscribed_title"),
        f"<p>{look.t('unsubscribed_body', address=address)}</p>"
        f'<p class="note">{look.t("resubscribe_hint")}</p>'
        + button_form(resubscribe, look.t("resubscribe_button")),
    )


def message_page(look: Look, title_key: str, body_key: str, **values: str) -> str:
    return page(look, look.t(title_key), f"<p>{look.t(body_key, **values)}</p>")


def not_listed_page(look: Look) -> str:
    return page(look, look.t("unsubscribe_title"), f"<p>{look.t('not_listed')}</p>")


def subscribe_page(
    look: Look,
    csrf: str,
    *,
    email: str = "",
    name: str = "",
    language: str = "",
    error: str | None = None,
) -> str:
    chosen = language or look.language.split("-")[0]
    options = "".join(
        f'<option value="{code}"{" selected" if code == chosen else ""}>{html.escape(label)}'
        "</option>"
        for code, label in LANGUAGES.items()
    )
    problem = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return page(
        look,
        look.t("subscribe_title"),
        f"""{problem}<form method="post" action="/subscribe">
<input type="hidden" name="csrf" value="{html.escape(csrf)}">
<label for="email">{look.t("email_label")}</label>
<input id="email" name="email" type="email" required maxlength="320" autocomplete="email"
 value="{html.escape(email)}">
<label for="name">{look.t("name_label")}</label>
<input id="name" name="name" maxlength="200" autocomplete="name" value="{html.escape(name)}">
<label for="language">{look.t("language_label")}</label>
<select id="language" name="language">{options}</select>
<p><button type="submit">{look.t("subscribe_button")}</button></p>
</form>""",
    )


def confirm_page(look: Look, action: str, address: str) -> str:
    return page(
        look,
        look.t("confirm_title"),
        f"<p>{look.t('confirm_ask', address=address)}</p>"
        + button_form(action, look.t("confirm_button")),
    )
