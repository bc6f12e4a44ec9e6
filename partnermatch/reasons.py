"""Why two organisations were matched, and how that reads: one value for the matcher, the
coordinators' page and API, the organisations' page and the notifier. Pure.

On the wire (events, see partnermatch.events.ReasonV1, and the matcher's store) a reason is a dict
written for the pair as stored, organisation "a" first. A reader sees it from their own side:
`seen_from("b")` swaps offers and seeks and the two sides' words, so that "a" is always the reader.
Concept labels come from whoever holds them (partnermatch.vocabulary, or the matcher's lexicon), as
a lookup from a concept id to its labels by language.

Also here: the reasons a coordinator may give for rejecting a suggestion, with their labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from partnermatch.i18n import N_
from partnermatch.languages import label_in, short_label, to_cyrillic

A_OFFERS = "a_offers_b_seeks"
B_OFFERS = "b_offers_a_seeks"
SHARED = "shared"
_OTHER_WAY = {A_OFFERS: B_OFFERS, B_OFFERS: A_OFFERS}
SIDES = ("a", "b")

# Where a reason stands for its reader (organisation "a" of a reason seen from the reader's side).
OWN_OFFERS = "own_offers"
PARTNER_OFFERS = "partner_offers"

_WIRE_KEYS = ("concept", "kind", "direction", "weight", "terms_a", "terms_b")

# A concept's labels by language, or None for a concept the holder does not know.
ConceptLabels = Callable[[str], Mapping[str, str] | None]


@dataclass(frozen=True)
class Reason:
    concept: str | None = None
    kind: str | None = None  # sector | activity | cooperation | country | term
    direction: str = SHARED  # a_offers_b_seeks | b_offers_a_seeks | shared
    weight: float = 0.0
    terms_a: tuple[str, ...] = ()  # organisation a's words
    terms_b: tuple[str, ...] = ()
    others: tuple[tuple[str, Any], ...] = ()  # keys the wire had beyond these, kept as they came

    @classmethod
    def from_dict(cls, wire: Mapping[str, Any]) -> Reason:
        return cls(
            concept=wire.get("concept"),
            kind=wire.get("kind"),
            direction=wire.get("direction", SHARED),
            weight=wire.get("weight", 0.0),
            terms_a=tuple(wire.get("terms_a") or ()),
            terms_b=tuple(wire.get("terms_b") or ()),
            others=tuple((key, value) for key, value in wire.items() if key not in _WIRE_KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "concept": self.concept,
            "kind": self.kind,
            "direction": self.direction,
            "weight": self.weight,
            "terms_a": list(self.terms_a),
            "terms_b": list(self.terms_b),
            **dict(self.others),
        }

    def flipped(self) -> Reason:
        """The same reason seen from the other organisation: offers and seeks swap, and so do the words."""
        return replace(
            self, direction=_OTHER_WAY.get(self.direction, self.direction), terms_a=self.terms_b, terms_b=self.terms_a
        )

    def seen_from(self, side: str) -> Reason:
        """The reason with organisation `side` ("a" or "b" of the pair it was written for) as "a"."""
        if side not in SIDES:
            raise ValueError(f"a pair has sides a and b, not {side!r}")
        return self if side == "a" else self.flipped()

    @property
    def side(self) -> str:
        """For a reason seen from its reader: `own_offers`, `partner_offers` or `shared`."""
        return {A_OFFERS: OWN_OFFERS, B_OFFERS: PARTNER_OFFERS}.get(self.direction, SHARED)

    def render(self, language: str, labels: ConceptLabels) -> str:
        """One line: the concept's name in the reader's language, then the words of both sides, e.g.
        for a Polish reader "technologie informacyjne (informatyka ↔ informacione tehnologije)", as
        the need met that opens a pair's reasons reads (render_need): the reader reads first what is
        offered, in words of their own. The organisations' words stay as they wrote them, in their
        own script; with no name known, they are the line."""
        words_a, words_b = _words(self.terms_a), _words(self.terms_b)
        if words_a and words_a.lower() == words_b.lower():
            words = words_a  # the same word on both sides is shown once
        else:
            words = " ↔ ".join(w for w in (words_a, words_b) if w)
        found = labels(self.concept) if self.concept else None
        if found is None:
            return words
        label = self._label(found, language)
        if not words or words.lower() == label.lower():
            return self._line(label, language)
        return f"{self._line(label, language)} ({words})"

    def _line(self, label: str, language: str) -> str:
        """A country met as what one side seeks reads as such ("partners from Poland"), not as a
        thing the other offers ("Poland")."""
        if self.kind != "country":
            return label
        return (_COUNTRY_LINE.get(language) or _COUNTRY_LINE["en"]).format(label=label)

    def render_need(self, language: str, seeker: str, provider: str, labels: ConceptLabels) -> str:
        """A need met as a sentence in the reader's language, then the words of both sides, e.g.
        "Banat Soft seeks agriculture and food — Voćar offers it (rolnictwa ↔ poljoprivreda)". The
        reason is oriented so that `terms_a` are the seeker's words and `terms_b` the provider's."""
        found = labels(self.concept) if self.concept else None
        label = self._label(found, language) if found is not None else (self.concept or "")
        templates = _NEED.get(language) or _NEED["en"]
        template = templates[1] if self.kind == "country" else templates[0]
        sentence = template.format(seeker=seeker, label=label, provider=provider)
        words = " ↔ ".join(w for w in (_words(self.terms_a), _words(self.terms_b)) if w)
        return f"{sentence} ({words})" if words else sentence

    def _label(self, labels: Mapping[str, str], language: str) -> str:
        """The concept's name in `language`. A country's label may add its official name where the
        short one is also a common word ("Malta (Republika Malty)": the lexicon matches labels
        too); the reason names the country by its short name, as the pages do."""
        label = label_in(labels, language, self.concept or "")
        return short_label(label) if self.kind == "country" else label

    def as_need(self) -> tuple[str, str, Reason]:
        """For a reason seen from its reader that one side offers and the other seeks: who seeks
        and who provides ("own" or "partner"), and the reason with the seeker's words as `terms_a`,
        as render_need reads it."""
        if self.direction == B_OFFERS:
            return "own", "partner", self
        if self.direction == A_OFFERS:
            return "partner", "own", replace(self, terms_a=self.terms_b, terms_b=self.terms_a)
        raise ValueError("a shared interest is not a need met")


def _words(terms: tuple[str, ...]) -> str:
    """One side's words as a reader reads them: a term whose words all stand, in order, in another
    term of the side is left out ("prehrambene" beside "prehrambene industrije"), and so is a
    repeat in another case."""
    folded = [" " + " ".join(t.casefold().split()) + " " for t in terms]
    kept = [
        term
        for i, term in enumerate(terms)
        if not any(j != i and (folded[i] in other and (folded[i] != other or j < i)) for j, other in enumerate(folded))
    ]
    return ", ".join(kept)


# "<seeker> seeks <label> — <provider> offers it", and for a country "<seeker> seeks partners from
# <country> — <provider> is there", in every reader language.
_NEED: dict[str, tuple[str, str]] = {
    "en": (
        "{seeker} seeks {label} — {provider} offers it",
        "{seeker} seeks partners from {label} — {provider} is there",
    ),
    "pl": (
        "{seeker} szuka: {label} — {provider} to oferuje",
        "{seeker} szuka partnerów z kraju: {label} — {provider} ma tam siedzibę",
    ),
    "sr": (
        "{seeker} traži: {label} — {provider} to nudi",
        "{seeker} traži partnere iz zemlje: {label} — {provider} je odatle",
    ),
    "hr": (
        "{seeker} traži: {label} — {provider} to nudi",
        "{seeker} traži partnere iz zemlje: {label} — {provider} je odande",
    ),
    "bs": (
        "{seeker} traži: {label} — {provider} to nudi",
        "{seeker} traži partnere iz zemlje: {label} — {provider} je odatle",
    ),
    "sl": (
        "{seeker} išče: {label} — {provider} to ponuja",
        "{seeker} išče partnerje iz države: {label} — {provider} je od tam",
    ),
    "mk": (
        "{seeker} бара: {label} — {provider} го нуди тоа",
        "{seeker} бара партнери од земјата: {label} — {provider} е оттаму",
    ),
    "bg": (
        "{seeker} търси: {label} — {provider} го предлага",
        "{seeker} търси партньори от страната: {label} — {provider} е оттам",
    ),
    "ru": (
        "{seeker} ищет: {label} — {provider} это предлагает",
        "{seeker} ищет партнёров из страны: {label} — {provider} находится там",
    ),
    "uk": (
        "{seeker} шукає: {label} — {provider} це пропонує",
        "{seeker} шукає партнерів із країни: {label} — {provider} звідти",
    ),
    "cs": (
        "{seeker} hledá: {label} — {provider} to nabízí",
        "{seeker} hledá partnery ze země: {label} — {provider} odtud pochází",
    ),
    "sk": (
        "{seeker} hľadá: {label} — {provider} to ponúka",
        "{seeker} hľadá partnerov z krajiny: {label} — {provider} odtiaľ pochádza",
    ),
    "ro": (
        "{seeker} caută: {label} — {provider} oferă acest lucru",
        "{seeker} caută parteneri din țara: {label} — {provider} este de acolo",
    ),
    "hu": (
        "{seeker} keresi: {label} — {provider} ezt kínálja",
        "{seeker} partnert keres innen: {label} — {provider} onnan való",
    ),
    "sq": (
        "{seeker} kërkon: {label} — {provider} e ofron",
        "{seeker} kërkon partnerë nga vendi: {label} — {provider} është prej andej",
    ),
    "de": (
        "{seeker} sucht: {label} — {provider} bietet das an",
        "{seeker} sucht Partner aus dem Land: {label} — {provider} ist dort ansässig",
    ),
}
_NEED["sr-Cyrl"] = (to_cyrillic(_NEED["sr"][0]), to_cyrillic(_NEED["sr"][1]))

# A country wish met, in a list of reasons: "partners from <country>".
_COUNTRY_LINE: dict[str, str] = {
    "en": "partners from {label}",
    "pl": "partnerzy z kraju: {label}",
    "sr": "partneri iz zemlje: {label}",
    "hr": "partneri iz zemlje: {label}",
    "bs": "partneri iz zemlje: {label}",
    "sl": "partnerji iz države: {label}",
    "mk": "партнери од земјата: {label}",
    "bg": "партньори от страната: {label}",
    "ru": "партнёры из страны: {label}",
    "uk": "партнери з країни: {label}",
    "cs": "partneři ze země: {label}",
    "sk": "partneri z krajiny: {label}",
    "ro": "parteneri din țara: {label}",
    "hu": "partnerek ebből az országból: {label}",
    "sq": "partnerë nga vendi: {label}",
    "de": "Partner aus dem Land: {label}",
}
_COUNTRY_LINE["sr-Cyrl"] = to_cyrillic(_COUNTRY_LINE["sr"])


# ---- why a coordinator rejected a suggestion ---------------------------------------------------

# The catalogue the labels are translated in: the coordinators' page's, for page and email alike.
REJECTION_DOMAIN = "coordinators"


REJECTION_LABELS: dict[str, str] = {
    "not_relevant": N_("Not relevant"),
    "already_partners": N_("Already partners"),
    "different_markets": N_("Different markets"),
    "no_capacity": N_("No capacity now"),
    "other": N_("Other"),
}
REJECTION_REASONS: tuple[str, ...] = tuple(REJECTION_LABELS)
