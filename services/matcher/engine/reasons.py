"""The reason finder: why one organisation is listed for another, as the concepts that add most to
the score (needs met first, then shared sectors and activities, countries asked for) and the words
both texts share, each with the words each side wrote. One pair at a time (`reasons`, the live
index) and many pairs at once (`reasons_many`, the batch) side by side: they give the same lists.
Pure (no I/O)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain

import numpy as np
import scipy.sparse as sp

from services.matcher.engine.analysis import Analysis, Hits, unpack_hits, unpack_surface
from services.matcher.engine.features import FeatureSpace
from services.matcher.engine.index import Index
from services.matcher.engine.values import Reason, Suggestion

DIRECTIONS = ("a_offers_b_seeks", "b_offers_a_seeks", "shared")
PAIRS_PER_SLICE = 50_000  # reasons_many works in slices of this many pairs, to bound its arrays
EVIDENCE_KEPT = 2000  # the evidence of this many rows, the latest gathered, is kept

# Per row: the concepts its capabilities name, its goals name, either (1/0), and its word weights
HitMatrices = tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]
# Per row and concept: the offer, seek and profile weights reasons read
ReasonColumns = tuple[np.ndarray, np.ndarray, np.ndarray]


class Evidence:
    """One row's concepts with their weights, and the words that expressed them (found when a
    reason first quotes them: a pair shares many concepts, its reasons quote at most a few).
    Keeps the analysis's hits and wishes; its surface forms are read when a reason first quotes a
    shared word (from the packed analysis, or those of the analysis as made).

    The evidence of thousands of rows is kept, so it is made of what the cyclic garbage collector
    can leave alone once it has seen it (tuples of strings and floats, dictionaries of those): no
    lists, sets, bound methods, instance dictionary or tuple holding a dictionary (CPython untracks
    a tuple only when nothing in it may be tracked) that each of its collections would walk again."""

    __slots__ = (
        "weights",
        "offered",
        "sought",
        "wishes",
        "_finder",
        "_offer_hits",
        "_seek_hits",
        "_packed",
        "_term_surface",
        "_offer_sectors",
        "_seek_sectors",
        "_said",
    )

    def __init__(
        self,
        finder: ReasonFinder,
        hits: Hits,
        stored: Analysis | bytes,
        weights: dict[str, tuple[float, float, float]],
        offered: dict[str, None],
        sought: dict[str, None],
    ) -> None:
        self.weights = weights  # concept -> (capabilities, goals, profile)
        self.offered, self.sought = offered, sought  # the concepts each side of the text named (as keys)
        self.wishes = _frozen(hits[2])  # country code -> the words that asked for it
        self._finder = finder
        # offers, needs: concept -> its words (apart: a tuple holding a dictionary stays tracked)
        self._offer_hits, self._seek_hits = _frozen(hits[0]), _frozen(hits[1])
        self._packed = stored if isinstance(stored, bytes) else None
        self._term_surface = None if isinstance(stored, bytes) else stored.term_surface
        # a sector's words are those of the sector and all its activities: every sector's at once,
        # from one pass over a side's hits (ReasonFinder.sector_words), when one is first quoted
        self._offer_sectors: dict[int, tuple[str, ...]] | None = None
        self._seek_sectors: dict[int, tuple[str, ...]] | None = None
        self._said: dict[tuple[str, bool], tuple[str, ...]] = {}

    @property
    def term_surface(self) -> dict[str, str]:
        """A word as the index counts it -> as the text wrote it."""
        if self._term_surface is None:
            assert self._packed is not None
            self._term_surface = unpack_surface(self._packed)
        return self._term_surface

    def offer_words(self, c: str) -> tuple[str, ...]:
        return self._words(c, False)

    def seek_words(self, c: str) -> tuple[str, ...]:
        return self._words(c, True)

    def words(self, c: str) -> tuple[str, ...]:
        """The words of the offers that named concept c, else those of the needs."""
        return self._words(c, c not in self.offered)

    def wish_words(self, code: str) -> tuple[str, ...]:
        return _distinct(self.wishes[code])

    def _words(self, c: str, sought: bool) -> tuple[str, ...]:
        found = self._said.get((c, sought))
        if found is None:
            finder = self._finder
            column = finder.sector_column.get(c)
            hits = self._seek_hits if sought else self._offer_hits
            if column is None:
                found = finder.said_concept(hits, c)
            else:
                by_sector = self._seek_sectors if sought else self._offer_sectors
                if by_sector is None:
                    by_sector = finder.sector_words(hits)
                    if sought:
                        self._seek_sectors = by_sector
                    else:
                        self._offer_sectors = by_sector
                found = by_sector.get(column, ())
            self._said[c, sought] = found
        return found


def _frozen(hits: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
    """The same words, each list as a tuple (see Evidence)."""
    return {c: tuple(words) for c, words in hits.items()}


class ReasonFinder:
    """Reads the feature space (which concept is which, the vector layout) and the index (the rows'
    vectors, analyses and word weights); keeps the evidence of the rows it needed last."""

    def __init__(self, features: FeatureSpace, index: Index) -> None:
        self.features = features
        self.index = index
        self.settings = settings = features.settings
        # What a reason weighs is what it adds to the score: for a sector, the product of the two
        # sides' sector weights (offered: the sector block; sought: the sought-sector block) times
        # w_need_sector or w_give_sector, or of their shared-sector weights (the shared block) times
        # w_sector when shared; for any other concept, that
        # of their offer and seek weights times w_need or w_give, or of profile weights times
        # w_profile (shared).
        is_sector = features.sector_place >= 0
        self.need_multiplier = np.where(is_sector, settings.w_need_sector, settings.w_need).astype(np.float64)
        self.give_multiplier = np.where(is_sector, settings.w_give_sector, settings.w_give).astype(np.float64)
        self.shared_multiplier = np.where(is_sector, settings.w_sector, settings.w_profile).astype(np.float64)
        # each concept's place, and each country's after them, as reasons_many numbers them
        self._place = {
            **{c: i for i, c in enumerate(features.concepts)},
            **{f"country.{code}": len(features.concepts) + i for i, code in enumerate(features.countries)},
        }
        # the same per concept, as `reasons` reads them: (need, give, shared)
        self._multipliers = {
            c: (need, give, shared)
            for c, need, give, shared in zip(
                features.concepts,
                self.need_multiplier.tolist(),
                self.give_multiplier.tolist(),
                self.shared_multiplier.tolist(),
                strict=True,
            )
        }
        # per concept as evidence reads it: whether it is a sector, the sector it belongs to (None:
        # none), and where its (capabilities, goals, profile) weights are in a row's vector
        block, place = features.block, features.sector_place.tolist()
        self._concept_facts: dict[str, tuple[bool, str | None, tuple[int, int, int]]] = {}
        for i, (c, j) in enumerate(zip(features.concepts, features.sector_concept_column.tolist(), strict=True)):
            if place[i] >= 0:
                at = (block["sector"].start + place[i], block["seek_sector"].start + place[i])
                columns = (at[0], at[1], block["shared"].start + place[i])
            else:
                columns = (block["offers"].start + i, block["seeks"].start + i, block["profile"].start + i)
            self._concept_facts[c] = (place[i] >= 0, features.concepts[j] if j >= 0 else None, columns)
        self.sector_column = {c: i for i, c in enumerate(features.concepts) if place[i] >= 0}  # a sector's column
        self._evidence: OrderedDict[int, Evidence] = OrderedDict()  # first in, first out (see topk)
        self._latest: tuple[int, Analysis] | None = None  # the row changed last, with its analysis as made

    def forget(self, row: int, analysis: Analysis | None = None) -> None:
        """Row `row` changed: its evidence is gathered again when next needed, from `analysis` (its
        new one, as made: not unpacked again) when given and no other row changed since."""
        self._evidence.pop(row, None)
        self._latest = (row, analysis) if analysis is not None else None

    def forget_all(self) -> None:
        self._evidence.clear()
        self._latest = None

    def suggestion(self, r: int, o: int, score: float) -> Suggestion:
        """Row o as a suggestion in row r's list, with its reasons."""
        return Suggestion(self.index.ids[o], float(score), tuple(self.reasons(r, o)))

    # ---- one pair ---------------------------------------------------------------------------

    def reasons(self, r: int, o: int) -> list[Reason]:
        """Why row o is listed for row r: at most max_reasons, needs met first (what B does meeting
        what A seeks), then by weight (a country A asked for among them)."""
        evidence_a, evidence_b = self.evidence(r), self.evidence(o)
        # (not a need met, -weight, the concept's place, concept, direction): ties go by the place,
        # as reasons_many orders them (a country after every scored concept)
        found: list[tuple[bool, float, int, str, str]] = []
        place = self._place
        kinds, settings, multipliers = self.features.kinds, self.settings, self._multipliers
        first = settings.need_first_min
        for c in evidence_a.weights.keys() & evidence_b.weights.keys():
            (cap_a, goal_a, prof_a), (cap_b, goal_b, prof_b) = evidence_a.weights[c], evidence_b.weights[c]
            w_need, w_give, w_prof = multipliers[c]
            directed = False
            if c in evidence_a.offered and c in evidence_b.sought and (w := w_give * cap_a * goal_b) > 1e-6:
                found.append((True, -w, place[c], c, "a_offers_b_seeks"))
                directed = True
            if c in evidence_b.offered and c in evidence_a.sought and (w := w_need * cap_b * goal_a) > 1e-6:
                found.append((w < first, -w, place[c], c, "b_offers_a_seeks"))
                directed = True
            if not directed and kinds[c] != "cooperation":
                found.append((True, -(w_prof * prof_a * prof_b + 1e-5), place[c], c, "shared"))
        here_a, here_b = self.country_of(r), self.country_of(o)
        if here_b and here_b != here_a and here_b in evidence_a.wishes:
            c = f"country.{here_b}"  # a country wish met follows the needs met in what B does
            found.append((True, -settings.w_country, place[c], c, "b_offers_a_seeks"))
        if here_a and here_a != here_b and here_a in evidence_b.wishes:
            c = f"country.{here_a}"
            found.append((True, -settings.w_country_give, place[c], c, "a_offers_b_seeks"))
        found.sort()
        ranked = []
        for _, neg_w, _, c, direction in found[: settings.max_reasons]:
            words: tuple[tuple[str, ...], tuple[str, ...]]
            if c.startswith("country."):
                code = c.removeprefix("country.")
                if direction == "b_offers_a_seeks":
                    words = evidence_a.wish_words(code), ()
                else:
                    words = (), evidence_b.wish_words(code)
                ranked.append(Reason(c, "country", direction, -neg_w, *words))
                continue
            if direction == "a_offers_b_seeks":
                words = evidence_a.offer_words(c), evidence_b.seek_words(c)
            elif direction == "b_offers_a_seeks":
                words = evidence_a.seek_words(c), evidence_b.offer_words(c)
            else:
                words = evidence_a.words(c), evidence_b.words(c)
            ranked.append(Reason(c, kinds[c], direction, -neg_w, *words))
        if len(ranked) < settings.max_reasons:
            a, b = evidence_a.term_surface, evidence_b.term_surface
            for w, t in self.shared_words(r, o)[: settings.max_reasons - len(ranked)]:
                ranked.append(Reason(None, "term", "shared", settings.w_terms * w, (a.get(t, t),), (b.get(t, t),)))
        return ranked

    def shared_words(self, r: int, o: int) -> list[tuple[float, str]]:
        """(weight in r times weight in o, word) of the words rows r and o share, largest first
        (and by the word, last first): from the two rows' word columns, no dictionary made."""
        words = self.index.words
        columns_r, weights_r = words.get(r)
        columns_o, weights_o = words.get(o)
        common, at_r, at_o = np.intersect1d(columns_r, columns_o, assume_unique=True, return_indices=True)
        names = self.features.term_names()
        products = (weights_r[at_r] * weights_o[at_o]).tolist()
        return sorted(zip(products, map(names.__getitem__, common.tolist()), strict=True), reverse=True)

    def evidence(self, r: int) -> Evidence:
        """Row r's concepts with their weights and the words that expressed them (kept for the
        EVIDENCE_KEPT rows gathered last)."""
        found = self._evidence.get(r)
        if found is None:
            if len(self._evidence) >= EVIDENCE_KEPT:
                self._evidence.popitem(last=False)
            found = self._evidence[r] = self._gather_evidence(r)
        return found

    def _gather_evidence(self, r: int) -> Evidence:
        """From the row's analysis: as made for the row just put, else only the part reasons read
        (unpack_hits; the surfaces when a reason quotes a shared word)."""
        hits: Hits
        stored = self._latest[1] if self._latest is not None and self._latest[0] == r else self.index.stored[r]
        if isinstance(stored, bytes):
            hits = unpack_hits(stored)
        else:
            hits = stored.offer_hits, stored.seek_hits, stored.wishes
        offer_hits, seek_hits = hits[0], hits[1]
        columns, values = self.index.right.get(r)
        value_of = dict(zip(columns.tolist(), values.tolist(), strict=True))  # the row's non-zeros
        facts = self._concept_facts
        # the concepts each side named: an activity, and the sector it belongs to
        offered: dict[str, None] = {}
        sought: dict[str, None] = {}
        for side, named in ((offer_hits, offered), (seek_hits, sought)):
            for c in side:
                known = facts.get(c)
                if known is None:
                    continue
                if not known[0]:
                    named[c] = None
                if known[1] is not None:
                    named[known[1]] = None
        weights = {}
        for c in offered.keys() | sought.keys():
            cap, goal, prof = facts[c][2]
            weights[c] = (value_of.get(cap, 0.0), value_of.get(goal, 0.0), value_of.get(prof, 0.0))
        return Evidence(self, hits, stored, weights, offered, sought)

    def country_of(self, r: int) -> str | None:
        """Row r's country, when it is one the lexicon knows (and so one a wish can name)."""
        country = self.index.country(r)
        return country if country in self.features.country_index else None

    def said_concept(self, hits: Mapping[str, Sequence[str]], c: str) -> tuple[str, ...]:
        """said() of concept c."""
        return self.said(hits, self.features.concept_index[c])

    def said(self, hits: Mapping[str, Sequence[str]], i: int) -> tuple[str, ...]:
        """The words one side of a profile named concept column i with: for a sector, those of
        the sector and of all its activities, in the order the text first named them."""
        if self.features.sector_place[i] < 0:
            return _distinct(hits[self.features.concepts[i]])
        of = self.features.sector_concept_column_by_id
        return _distinct(dict.fromkeys(chain.from_iterable(words for c, words in hits.items() if of.get(c) == i)))

    # ---- many pairs -------------------------------------------------------------------------

    def reasons_many(
        self,
        owner: np.ndarray,
        cand: np.ndarray,
        hits: HitMatrices,
        columns: ReasonColumns | None = None,
        quotes: dict[int, tuple[str, ...]] | None = None,
    ) -> list[list[Reason]]:
        """reasons(owner[i], cand[i]) for many pairs: the same reasons, weights and order, with the
        weights of all pairs taken from sparse products rather than one dictionary walk per pair.
        `hits` and `columns`: from hit_matrices() and reason_columns(); `quotes`: the words quoted,
        by (row, concept, side), which a caller may keep from one call to the next."""
        if len(owner) > PAIRS_PER_SLICE:  # pairs are independent
            return [
                reasons
                for i in range(0, len(owner), PAIRS_PER_SLICE)
                for reasons in self.reasons_many(
                    owner[i : i + PAIRS_PER_SLICE], cand[i : i + PAIRS_PER_SLICE], hits, columns, quotes
                )
            ]
        features, settings = self.features, self.settings
        h_cap, h_goal, h_any, words = hits
        nc = len(features.concepts)
        cap, goal, prof = columns if columns is not None else self.reason_columns()
        w_need, w_give, w_prof = self.need_multiplier, self.give_multiplier, self.shared_multiplier
        top = settings.max_reasons
        out: list[list[Reason]] = [[] for _ in range(len(owner))]
        if len(owner) == 0:
            return out

        def both(
            a_rows: np.ndarray, a: sp.csr_matrix, b_rows: np.ndarray, b: sp.csr_matrix
        ) -> tuple[np.ndarray, np.ndarray]:  # (pair, concept) where both rows have a 1
            m = a[a_rows].multiply(b[b_rows]).tocoo()
            return m.row.astype(np.int64), m.col.astype(np.int64)

        f64 = np.float64
        p0, c0 = both(owner, h_cap, cand, h_goal)  # the owner offers, the candidate seeks
        w0 = w_give[c0] * cap[owner[p0], c0].astype(f64) * goal[cand[p0], c0].astype(f64)
        p1, c1 = both(cand, h_cap, owner, h_goal)  # the candidate offers, the owner seeks
        w1 = w_need[c1] * cap[cand[p1], c1].astype(f64) * goal[owner[p1], c1].astype(f64)
        k0, k1 = w0 > 1e-6, w1 > 1e-6
        p2, c2 = both(owner, h_any, cand, h_any)  # named by both, in no direction
        directed = np.zeros(len(owner) * nc, bool)
        directed[p0[k0] * nc + c0[k0]] = directed[p1[k1] * nc + c1[k1]] = True
        k2 = ~directed[p2 * nc + c2] & ~features.is_cooperation[c2]
        p2, c2 = p2[k2], c2[k2]
        w2 = w_prof[c2] * prof[owner[p2], c2].astype(f64) * prof[cand[p2], c2].astype(f64) + 1e-5
        # countries: the candidate is where the owner asked for (a need met), or the reverse;
        # their concept numbers follow the scored concepts' (nc + the country's place)
        wish, right = features.block["wish"], self.index.right.merge()
        place = self.country_places()
        k_of, k_of_owner = place[cand], place[owner]
        p3 = np.flatnonzero((k_of >= 0) & (k_of != k_of_owner))
        p3 = p3[_entries(right, owner[p3], wish.start + k_of[p3]) > 0]
        p4 = np.flatnonzero((k_of_owner >= 0) & (k_of != k_of_owner))
        p4 = p4[_entries(right, cand[p4], wish.start + k_of_owner[p4]) > 0]
        pair = np.concatenate([p0[k0], p1[k1], p2, p3, p4])
        concept = np.concatenate([c0[k0], c1[k1], c2, nc + k_of[p3], nc + k_of_owner[p4]])
        direction = np.concatenate(
            [
                np.zeros(k0.sum(), np.int8),
                np.ones(k1.sum(), np.int8),
                np.full(len(p2), 2, np.int8),
                np.ones(len(p3), np.int8),
                np.zeros(len(p4), np.int8),
            ]
        )
        weight = np.concatenate(
            [w0[k0], w1[k1], w2, np.full(len(p3), settings.w_country), np.full(len(p4), settings.w_country_give)]
        )
        # a need met comes first, a country wish met among the rest (as reasons(): needs met
        # first, then by weight, concept, direction)
        later = (direction != 1) | (weight < settings.need_first_min) | (concept >= nc)
        order = np.lexsort((direction, concept, -weight, later, pair))
        pair, concept, direction, weight = pair[order], concept[order], direction[order], weight[order]
        keep = np.arange(len(pair)) - np.searchsorted(pair, pair, side="left") < top
        pair, concept, direction, weight = pair[keep], concept[keep], direction[keep], weight[keep]

        analyses, kinds = self.index.analyses, features.kinds
        names = [*features.concepts, *(f"country.{code}" for code in features.countries)]
        width = len(names)
        # Which side's words each reason quotes (0: offers, 1: seeks): as directed, or for a
        # shared concept the offers where they name them. One key per (row, concept, side). A
        # country is quoted from the side that asked for it only (side 1), the other says nothing.
        rows_a, rows_b = owner[pair], cand[pair]
        scored = concept < nc
        in_cap_a, in_cap_b = np.zeros(len(pair), bool), np.zeros(len(pair), bool)
        in_cap_a[scored] = _entries(h_cap, rows_a[scored], concept[scored]) > 0
        in_cap_b[scored] = _entries(h_cap, rows_b[scored], concept[scored]) > 0
        side_a = np.where(direction == 2, ~in_cap_a, direction == 1).astype(np.int64)
        side_b = np.where(direction == 2, ~in_cap_b, direction == 0).astype(np.int64)
        keys, where = np.unique(
            np.concatenate([(rows_a * width + concept) * 2 + side_a, (rows_b * width + concept) * 2 + side_b]),
            return_inverse=True,
        )
        quoted = []
        quotes = {} if quotes is None else quotes
        for key in keys.tolist():
            got = quotes.get(key)
            if got is None:
                a = analyses[key // (2 * width)]
                assert a is not None
                col = (key // 2) % width
                if col >= nc:
                    got = _distinct(a.wishes.get(features.countries[col - nc], ())) if key % 2 else ()
                elif features.sector_place[col] >= 0:  # every sector of this side at once: one pass
                    base = key - col * 2
                    for sector, said in self.sector_words(a.seek_hits if key % 2 else a.offer_hits).items():
                        quotes[base + sector * 2] = said
                    got = quotes.get(key, ())
                else:
                    got = self.said(a.seek_hits if key % 2 else a.offer_hits, col)
                quotes[key] = got
            quoted.append(got)
        half = len(pair)
        words_a = map(quoted.__getitem__, where[:half].tolist())
        words_b = map(quoted.__getitem__, where[half:].tolist())
        for p, c, d, w, ta, tb in zip(
            pair.tolist(),
            map(names.__getitem__, concept.tolist()),
            direction.tolist(),
            weight.tolist(),
            words_a,
            words_b,
            strict=True,
        ):
            out[p].append(Reason(c, kinds.get(c, "country"), DIRECTIONS[d], w, ta, tb))

        short = np.flatnonzero(np.bincount(pair, minlength=len(owner)) < top)  # room for shared words
        if len(short) and words.shape[1]:
            m = words[owner[short]].multiply(words[cand[short]]).tocoo()
            q, col, val = short[m.row], m.col.astype(np.int64), m.data
            order = np.lexsort((-col, -val, q))  # as reasons(): by weight, then the word, both descending
            q, col, val = q[order], col[order], val[order]
            room = top - np.bincount(pair, minlength=len(owner))
            keep = np.arange(len(q)) - np.searchsorted(q, q, side="left") < room[q]
            term_names, owners, cands = features.term_names(), owner.tolist(), cand.tolist()
            for p, j, w in zip(q[keep].tolist(), col[keep].tolist(), val[keep].tolist(), strict=True):
                a, b = analyses[owners[p]], analyses[cands[p]]
                assert a is not None and b is not None
                t = term_names[j]
                out[p].append(
                    Reason(
                        None,
                        "term",
                        "shared",
                        settings.w_terms * w,
                        (a.term_surface.get(t, t),),
                        (b.term_surface.get(t, t),),
                    )
                )
        return out

    def hit_matrices(
        self, words64: sp.csr_matrix | None = None, made: tuple[sp.csr_matrix, sp.csr_matrix] | None = None
    ) -> HitMatrices:
        """Per row, the concepts its capabilities name, its goals name, and either (1/0), and its
        word weights in float64 (the values of the index's terms): what reasons_many reads.
        `made`: the concept hits of the offers and seeks when already made (by a fit)."""
        features = self.features
        if made is not None:
            cap, goal = made
        else:
            cap = (features.concept_counts(self.index.analyses, "offer_hits") > 0).astype(np.int8)
            goal = (features.concept_counts(self.index.analyses, "seek_hits") > 0).astype(np.int8)
        words64 = self.index.term_matrix(np.float64) if words64 is None else words64
        # a sector counts as named wherever one of its activities is
        cap = ((cap + cap @ features.to_sector_concept) > 0).astype(np.int8).tocsr()
        goal = ((goal + goal @ features.to_sector_concept) > 0).astype(np.int8).tocsr()
        return cap, goal, ((cap + goal) > 0).astype(np.int8).tocsr(), words64

    def reason_columns(self) -> ReasonColumns:
        """Per row and concept, the offer, seek and profile weights reasons read: for a sector, the
        sector block's weight (offered), the sought-sector block's (sought) and the shared block's
        (profile); the blocks' own weights for other concepts."""
        block, sector_place = self.features.block, self.features.sector_place
        right = self.index.right.merge().toarray()
        sector_cols = np.flatnonzero(sector_place >= 0)
        views = []
        for own, sectors in (("offers", "sector"), ("seeks", "seek_sector"), ("profile", "shared")):
            view = right[:, block[own]].copy()
            view[:, sector_cols] = right[:, block[sectors]][:, sector_place[sector_cols]]
            views.append(view)
        return views[0], views[1], views[2]

    def country_places(self) -> np.ndarray:
        """Per row, the place of its country among the feature space's countries (-1: none the
        lexicon knows)."""
        n = len(self.index.ids)
        here = self.index.right.merge()[:, self.features.block["country"]].tocsr()
        if here.shape[1] == 0:
            return np.full(n, -1, np.int64)
        return np.where(np.diff(here.indptr) > 0, np.asarray(here.argmax(axis=1)).ravel(), -1).astype(np.int64)

    def sector_words(self, hits: Mapping[str, Sequence[str]]) -> dict[int, tuple[str, ...]]:
        """What said() gives for each sector column one side of a profile names, from one pass."""
        of = self.features.sector_concept_column_by_id
        found: dict[int, list[str]] = {}
        for c, words in hits.items():
            j = of.get(c)
            if j is not None:
                found.setdefault(j, []).extend(words)
        return {j: _distinct(words) for j, words in found.items()}


def _entries(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """m[rows[i], cols[i]] for every i, as a flat array (also when there are none)."""
    if len(rows) == 0:
        return np.zeros(0, m.dtype)
    return np.asarray(m[rows, cols]).ravel()


def _distinct(words: Iterable[str], limit: int = 3) -> tuple[str, ...]:
    """The first `limit` words that differ other than in case, as first written; an iterable other
    than a list is read no further than needed (a list's repeated words are dropped first, at once)."""
    if isinstance(words, list):
        if len(words) == 1:
            return (words[0],)
        words = dict.fromkeys(words)  # each word once, in the order first written: the same first ones
    seen: dict[str, str] = {}
    for w in words:
        key = w.lower()
        if key not in seen:
            seen[key] = w
            if len(seen) == limit:
                break
    return tuple(seen.values())
