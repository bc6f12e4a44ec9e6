"""The engine's weights and limits, each with the measurement that chose it. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineSettings:
    w_sector: float = 0.95  # shared sector (0.7 before seek_sector_damp, 0.65 before own_activity_discount: see there)
    w_profile: float = 0.15  # whole-profile concept likeness
    # What the organisation seeks against what the candidate offers (its needs met), and the
    # reverse (it meets the candidate's needs): concept by concept, and sector by sector (what
    # the candidate does, read mostly from its capabilities, against the sectors sought).
    # A need met against likeness is the trade-off between the two quality bars: what seekers
    # seek, and the same sector for the dev set, whose organisations also state needs (a third of
    # them, other sectors than their own). Tuned on the dev set and seekers_a only (seekers_b held
    # out): P@5 same sector / sought sector of those seeking another sector, at 0.45: 0.894 /
    # 0.495; 0.55: 0.862 / 0.585; 0.65: 0.830 / 0.655; 0.8: 0.77 / 0.76. A peer slot kept in each
    # list traded worse (0.035 of same sector for 0.1 of sought). The candidate's sector meeting
    # the other's need (w_give_sector) lowered both.
    w_need: float = 0.25
    w_give: float = 0.04
    w_need_sector: float = 0.55
    w_give_sector: float = 0.0
    # A candidate in a country the organisation asked for, and the reverse. Seekers_a's country
    # wishes met in the top 5: 0.22 at 0.1, 0.48 at 0.3 (nothing else changed), 0.63 at 0.6 (at
    # the cost of sought sectors and same sector: a country is no partner by itself).
    w_country: float = 0.42  # 0.3 before seek_sector_damp: see there
    w_country_give: float = 0.03
    w_both_ways: float = 0.08  # bonus: the weaker of the two directions
    w_terms: float = 0.10  # within-language words (same-language texts only share them)
    # How much a related sector counts as a shared one. The dev set says not at all: at 0.35,
    # P@5 same sector was 0.952 and related 0.985; at 0 they are 0.965 and 0.986, better in each
    # of its three parts, since related-sector partners were pushed above same-sector ones.
    related_weight: float = 0.0
    rollup: float = 0.5  # an activity also counts for its sector
    # How much the goals count toward an organisation's own sector, against 1 for its capabilities:
    # what it seeks is often another sector (a dairy seeking biogas partners, a paint maker seeking
    # furniture makers). P@5 same sector, dev set / 64 profiles a helper wrote later: at 1.0,
    # 0.970 / 0.681; at 0.3, 0.984 / 0.688; at 0, 0.990 / 0.691. Not 0: a text whose capabilities
    # name no sector still has one.
    goal_sector_weight: float = 0.3
    # How much a need counts toward the sought sectors when no request states it (a goals sentence
    # without "we seek ..."), against 1 when one does: such goals often say what the organisation
    # does or wants for itself rather than whom it seeks.
    implicit_need_weight: float = 0.25
    # How much a need counts that only an aim of partnering in the goals states ("4. establishing
    # cooperation with makers of heat-recovery systems", cue.partnering), between an implicit need (0)
    # and a request (1). Clusters' aims lists name other sectors this way both when they seek them
    # and in passing: two held-out sets written in that style were labelled by what the organisation
    # seeks (seekers_h) and by its own sector (devset profiles_6). bench/quality.py with all seven dev
    # files and nine seekers sets: at 0, same-sector P@5 0.867 (profiles_6 0.912) / sought-sector
    # 0.658 (seekers_h 0.463); 0.3, 0.862 (0.903) / 0.662 (0.503); 0.5, 0.855 (0.881) / 0.667
    # (0.544); 1, 0.832 (0.847) / 0.680 (0.653). The other sets barely move.
    partnering_weight: float = 0.3
    # A need for the organisation's own sector counts less by its share of that sector: a request
    # often names its own products ("we seek distributors for our cheese"), and peers are found
    # by likeness anyway.
    own_sector_discount: float = 1.0
    # The same for the activities a goals text names of the organisation's own sector, by its share
    # of that sector: "for our hotel we need a booking system", "we need cold-chain transport for our
    # cheese" name hotels and cheese, which met peers as needs. Not for an organisation without
    # goals (its goals stand for its capabilities), nor for a need picked from the form's list (a dairy
    # that picks livestock seeks farms, and says so). bench/quality.py, same-sector P@5 / seekers'
    # sought-sector P@5 (a, b and c) / their country wishes met: at 0 (w_sector 0.65) 0.873 / 0.695 /
    # 0.653; at 1.0 (w_sector 0.65) 0.849 / 0.761 / 0.689; with w_sector 0.7, 0.867 / 0.731 / 0.711;
    # 0.72, 0.873 / 0.715 / 0.705; 0.75, 0.880 / 0.695 / 0.689. Better in each of the three seekers
    # sets; w_sector 0.7 gives up 0.006 of same sector for 0.036 of needs met.
    own_activity_discount: float = 1.0
    # The shared sector counts less for an organisation that seeks other sectors: its shared-sector
    # block is its sector block times 1 - this x the strength of its needs for other sectors (the
    # sought-sector block's length: 1 for a stated need wholly elsewhere, a quarter for an implicit
    # one, 0 for none), both as it lists its peers and as they list it; what it does still meets
    # others' needs in full (the sector block). bench/quality.py, all four seekers sets, same-sector
    # P@5 / sought-sector P@5 / country wishes met: before (w_sector 0.7, w_country 0.3) 0.866 /
    # 0.733 / 0.684; w_country 0.4 alone 0.861 / 0.731 / 0.728; w_sector 0.65 and w_country 0.4,
    # 0.845 / 0.760 / 0.736. With this (w_sector, w_country): 0.15 (0.9, 0.4) 0.876 / 0.729 / 0.708;
    # 0.2 (0.95, 0.42) 0.872 / 0.738 / 0.712; 0.25 (0.95, 0.42) 0.854 / 0.766 / 0.712; 0.2 (0.9,
    # 0.4) 0.857 / 0.761 / 0.716; 0.3 (0.9, 0.4) 0.827 / 0.802 / 0.704. Chosen 0.25: every seekers
    # set gains 0.03-0.04; the dev set's organisations whose same-sector slots it takes are those
    # whose goals seek another sector (an education cluster seeking industrial partners, a dairy
    # seeking cold-chain logistics), where a same-sector label counts their needs met as misses.
    seek_sector_damp: float = 0.25
    # A school names the trades it teaches more often than schooling ("we educate cooks, waiters
    # and hotel technicians, 480 pupils"), so its sectors read mostly as those trades: other
    # schools of the trade then met a school's need for hotels or machining firms, and its own
    # need for them was discounted as a need of its own sector ("take our pupils for practice"
    # left schooling as the need). Where education's part of an organisation's sectors (a unit
    # vector) is at least teaching_share (0.4: some 16% of its squared weight; 124 of the 1,324
    # labelled organisations, 29 of them labelled with another sector, among them ICT clusters
    # with faculties and schools as members), the others count by taught_weight as it is asked
    # for and asks (not in likeness: the shared block). bench/quality.py, 524 dev / 1,324 with
    # the thirteen seekers sets, same-sector P@5 / sought-sector P@5: at 1 (none) 0.844 / 0.683;
    # 0.7, 0.837 / 0.691; 0.5, 0.828 / 0.697; 0.3, 0.822 / 0.700; 0, 0.815 / 0.701
    # (teaching_share 0.3 or 0.5: lower on both). At 0.5 every seekers set is equal or better
    # (seekers_b 0.700 -> 0.742, seekers_m 0.741 -> 0.759); the dev set's loss is its schools',
    # whose goals ask for firms ("Poszukujemy firm metalowych ..., które przyjmą uczniów na
    # praktyki") and now get some, which their same-sector label counts as misses. Applied to
    # likeness as well, it made no difference (0.846 / 0.681 at 0.5): other schools stayed the
    # nearest.
    teaching_share: float = 0.4
    taught_weight: float = 0.5
    # A negated request that takes back a sector ("we are not looking for more software houses",
    # "Nehledáme další dopravce") asks for no peers there: that sector's part of the organisation's
    # shared-sector block (likeness) counts 1 - this, unless a request names the sector itself
    # ("other builders for a consortium, not material suppliers"); a request for one of its
    # activities does not undo it, as requests name their own products ("not software firms, but
    # hotels to pilot our booking system"). What the organisation does still meets others' needs.
    # bench/quality.py, 524 dev / 1,452 with the fifteen seekers sets, same-sector P@5 /
    # sought-sector P@5 (seeking another sector, peers, country wishes met): at 0, 0.827 / 0.702
    # (0.667, 0.896, 0.728); 0.5, 0.827 / 0.711; 1, 0.827 / 0.712 (0.678, 0.896, 0.728), every set
    # equal or better (seekers_c 0.766 -> 0.791, d 0.738 -> 0.766, o 0.675 -> 0.691). Tried: the
    # whole block scaled by the refused sectors' share, 0.710 (hotels lost the likeness a software
    # house's goals give them); undone by any request in the sector, 0.708; undone by none, 0.710 with
    # peers 0.883 (a builder refusing design bureaus while it seeks other builders lost its five).
    # The dev set has no such negation.
    refused_peer_damp: float = 1.0
    # A sector counts in the sector block only: in the profile, capability and goal blocks too, it
    # would add little (dev set: P@5 0.948 with it, 0.952 without) and a quarter of the work of
    # the batch's sparse product, whose densest columns it made.
    kind_weight: tuple[tuple[str, float], ...] = (("sector", 0.0), ("activity", 1.0), ("cooperation", 0.2))
    max_term_df: float = 0.15  # words in more profiles than this share say nothing
    candidates: int = 60
    cached_k: int = 10
    max_reasons: int = 5
    # A need met that adds at least this to the score is named first among the reasons.
    need_first_min: float = 0.02
    # The weights are due to be learnt again from the whole index (reweigh_due; the matcher's table
    # does it beside the event path, services/matcher/table.py) once this many changes (upserts and
    # removals), and at least this share of the index, have happened since they were last learnt.
    reweigh_min_changes: int = 200
    reweigh_share: float = 0.2
