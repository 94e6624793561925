"""DESCRIPTION and X-ALT-DESC (HTML) <-> Graph ``body`` (resources/itembody.md).

The storage reads bodies as text (``Prefer: outlook.body-content-type="text"``,
api/event-get.md), so a body written as HTML reads back as Graph's own text rendering of it.
Whether a body is still the one the gateway wrote is therefore judged on its words only
(:func:`words`), which survive any HTML-to-text conversion.
"""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("head", "style", "script", "title"):
            self._skip += 1
        if tag in ("br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("head", "style", "script", "title") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_to_text(content: str) -> str:
    """Plain text of an HTML body: tags dropped, entities decoded, blank runs collapsed."""
    parser = _Text()
    parser.feed(content or "")
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{2,}", "\n", text).strip()


def body_text(body: dict | None) -> str:
    """The text of a Graph ``itemBody`` (HTML converted), line ends as ``\\n``."""
    body = body or {}
    content = str(body.get("content") or "")
    if str(body.get("contentType") or "text").lower() == "html":
        return html_to_text(content)
    return content.replace("\r\n", "\n")


def words(text: str) -> str:
    """A short digest of the words of a text (letters and digits only, case-folded)."""
    letters = re.sub(r"\W+", "", text or "").casefold()
    return hashlib.sha1(letters.encode()).hexdigest()[:12]
