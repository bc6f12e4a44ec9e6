"""POST → suggestion visible to a coordinator, through the real stack (issue 17 item 4): the time
from a write being acknowledged by the profiles API until a coordinator's review API shows a
pending suggestion involving the organisation as written, under a bounded rate of writes.

The stack is the one `partnermatch up` runs (launcher.stack). First --n generated
organisations in many clusters are registered through the API (the matcher indexes and plans them
live) and every cluster gets a coordinator; once the matcher has read them all, and has learnt the
weights again from them and planned every list with those (it settles: see settled()), registrations of
new organisations and PATCHes of existing ones alternate at --rate writes per second for
--duration seconds, each with texts of the seekers' dev set (organisations stating needs that
others offer), so each should be suggested a partner in another cluster.

What "visible" means here: the bench follows the `matches` topic, and for each `match.suggested`
involving a written organisation it asks the review API (GET /v1/suggestions/<pair_id>, with a
token of the organisation's cluster's coordinator) until the answer is a pending suggestion
showing the organisation as written (a new organisation's id; a PATCH's marker in its goals).
That answer's arrival is the time measured: an upper bound, since the matcher's outbox relay
publishes the suggestion after it is readable. Nothing is asked about a pair the matcher's Redis
shows last written before the write was sent, nor while it shows the write not applied yet (that
peek only spares calls that cannot succeed): a suggestion announced before then is asked about
once the write is applied. A PATCHed organisation's pairs are often written, with its new texts,
by the plan of another organisation's event that reads its list after the table reader has indexed
the PATCH and before the PATCH's own run applies it; the PATCH's plan then finds them as they are
and announces nothing.
A write may rightly have no suggestion: its organisation's list holds its best few partners, each
organisation holds at most MATCHER_MAX_PENDING_PER_ORG pending pairs, and a pair that beats the
weakest by no more than MATCHER_DISPLACE_MARGIN displaces none (the bench's few texts, shared by some
35 organisations each, make equal scores common); and a pair with a partner the matcher has not
applied yet waits for it.
For a write the matcher applied leaving its organisation no pending pair, the bench asks the
review API's list of the cluster's pending suggestions naming it (GET /v1/suggestions?q=<name>)
until it shows none of it: "shown with no suggestion", timed apart, and with the suggestions in
the p95 the goal is judged by (the write's outcome shown); a suggestion seen later still counts
as the write's outcome.
Beside it, per write: when its event reached the `profiles` topic (the profiles relay), when the
matcher wrote the pair (the pair's updated_ms in the matcher's Redis) and when `match.suggested`
reached the bench (the matcher's relay). --profile DIR samples the parts with py-spy meanwhile
(their CPU, while the writes are sent), and the matcher's threads waiting too (py-spy --idle
--threads, until the last write is seen or given up: matcher-threads.txt), which shows what its
consumer waits on (the index's lock, the other writers, Redis, the broker).
--writes-json FILE keeps each write's times after its ack (published, pair written, suggested,
visible, shown with none), for a look at the slowest.
Usage: python bench/post_visible.py [--n 10000] [--rate 50] [--duration 60] [--writes-json FILE]
Does I/O (processes, sockets).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from engine_speed import generate  # noqa: E402
from write_path import call, cpu_seconds, sampled, wait_for  # noqa: E402

if TYPE_CHECKING:
    import redis

COUNTRIES = ("RS", "HR", "BA", "SI", "MK", "BG", "PL", "CZ", "SK", "RO", "HU", "AL", "DE", "UA", "AT", "IT")
PASSWORD = "bench-coordinator-2026"
MATCHER_OUTBOX = "{matcher}:outbox"
PROFILED = ("profiles", "relay", "matcher", "matcher-relay", "review")  # sampled with --profile


@dataclass
class Write:
    index: int
    kind: str  # "register" or "patch"
    body: dict
    cluster: str
    org_id: str | None = None  # a registration's id is known once acknowledged
    token: str | None = None  # a PATCH's organisation token
    marker: str | None = None  # in a PATCH's goals: the review API shows the organisation as written
    revision: int = 1
    sent: float = 0.0
    acked: float | None = None
    published: float | None = None  # its profile event on the `profiles` topic
    suggested: float | None = None  # the match.suggested that led to the confirmation, at the bench
    written: float | None = None  # the pair's updated_ms in the matcher's Redis
    visible: float | None = None  # the review API answered with the suggestion
    asked: int = 0  # calls to the review API about it
    name: str = ""  # the organisation's name: the review API's list is searched by it
    text: int = 0  # which seekers' text it was written with
    # The matcher applied it and left its organisation with no pending pair, and the review API's
    # list of the cluster's pending suggestions showed none of it (see confirm_none): when that answer came
    shown_none: float | None = None
    candidates: list[tuple[str, float]] = field(default_factory=list)  # (pair id, when announced) to ask about
    queued: bool = False  # waiting for a confirmer, or with one
    # suggestions announced before the matcher applied the write: asked about once it has (see confirm)
    deferred: list[tuple[str, float]] = field(default_factory=list)
    early: set[str] = field(default_factory=set)  # the pairs ever deferred so
    early_outcome: bool = False  # the suggestion found visible was one of them


def seeker_texts() -> list[dict]:
    """Texts of organisations that state needs (tests/data/seekers), those with goals."""
    texts = []
    for path in sorted((ROOT / "tests" / "data" / "seekers").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            o = json.loads(line)
            if line.strip() and o["goals"].strip():
                texts.append({k: o[k] for k in ("capabilities", "goals", "language")})
    return texts


def registration(name: str, cluster: str, country: str, text: dict, email: str) -> dict:
    from partnermatch.languages import PROFILE_LANGUAGES

    body = {
        "name": name,
        "cluster_id": cluster,
        "country": country,
        "capabilities": text["capabilities"],
        "goals": text["goals"],
        "contacts": [{"name": name, "email": email, "language": "en", "consent": True}],
    }
    if text.get("language") in PROFILE_LANGUAGES:
        body["language"] = text["language"]
    return body


def preload(
    api: str, admin: str, n: int, threads: int
) -> tuple[dict[str, str], dict[str, str], dict[str, tuple[str, str, str]]]:
    """Clusters, a coordinator of each and n generated organisations, registered through the API;
    returns each cluster's coordinator's token, each cluster's country, and each organisation's
    cluster, token and name."""
    orgs = generate(n, seed=17)
    clusters = sorted({o["cluster"] for o in orgs})
    countries = {c: COUNTRIES[i % len(COUNTRIES)] for i, c in enumerate(clusters)}

    def cluster_with_coordinator(cluster: str) -> tuple[str, str]:
        call("POST", f"{api}/v1/clusters", {"id": cluster, "name": cluster, "country": countries[cluster]}, admin)
        username = f"coord-{cluster}"
        coordinator = {
            "username": username,
            "password": PASSWORD,
            "name": username,
            "email": f"{username}@bench.example.org",
        }
        call("POST", f"{api}/v1/clusters/{cluster}/coordinators", coordinator, admin)
        return cluster, call("POST", f"{api}/v1/auth/login", {"username": username, "password": PASSWORD})["token"]

    def register(o: dict) -> tuple[str, tuple[str, str, str]]:
        body = registration(o["name"], o["cluster"], countries[o["cluster"]], o, f"{o['id']}@bench.example.org")
        made = call("POST", f"{api}/v1/organisations", body)
        return made["organisation"]["id"], (o["cluster"], made["token"], o["name"])

    with ThreadPoolExecutor(threads) as pool:
        coordinators = dict(pool.map(cluster_with_coordinator, clusters))
        started = time.monotonic()
        registered = dict(pool.map(register, orgs))
    print(
        f"  {n} organisations in {len(clusters)} clusters registered in {time.monotonic() - started:.0f} s", flush=True
    )
    return coordinators, countries, registered


def plan_writes(
    count: int,
    countries: dict[str, str],
    targets: list[tuple[str, tuple[str, str, str]]],
    texts: list[dict],
    mix: str,
    rng: random.Random,
) -> list[Write]:
    """Registrations and PATCHes in turn, or only one kind; each PATCH to an organisation taken from
    `targets` (organisation id, (cluster, token, name)), so none is written twice."""
    kinds = {"both": ("register", "patch"), "register": ("register",), "patch": ("patch",)}[mix]
    writes = []
    for i, kind in zip(range(count), itertools.cycle(kinds), strict=False):
        text = texts[i % len(texts)]
        if kind == "patch" and targets:
            org_id, (cluster, token, name) = targets.pop()
            marker = f"bench-{uuid.uuid4().hex[:12]}"
            body = {"capabilities": text["capabilities"], "goals": f"{text['goals']} ({marker})"}
            w = Write(i, kind, body, cluster, org_id, token, marker, revision=2, name=name, text=i % len(texts))
        else:
            cluster = rng.choice(sorted(countries))
            name = f"Seeker {i} {uuid.uuid4().hex[:8]}"
            body = registration(name, cluster, countries[cluster], text, f"s{i}@bench.example.org")
            w = Write(i, "register", body, cluster, name=name, text=i % len(texts))
        writes.append(w)
    return writes


class Tracker:
    """The writes in flight and the suggestions announced for each organisation; the topics'
    readers, the senders and the confirmers share it (under its lock). A write waits in the queue
    at most once: one confirmer asks about its suggestions one at a time, newest first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_org: dict[str, Write] = {}
        self.suggested: dict[str, list[tuple[str, float]]] = {}  # org id -> (pair id, when announced)
        self.to_confirm: queue.Queue[Write] = queue.Queue()
        self.deferred: dict[int, Write] = {}  # id(write) -> a write with suggestions waiting for its apply
        self.rechecked = 0.0  # when a confirmer last looked whether those writes were applied

    def _offer(self, w: Write, pairs: list[tuple[str, float]]) -> None:
        """Under the lock: suggestions to ask about for a write."""
        if w.visible is not None or not pairs:
            return
        w.candidates.extend(pairs)
        if not w.queued:
            w.queued = True
            self.to_confirm.put(w)

    def acknowledged(self, w: Write, org_id: str, at: float) -> None:
        """A write acknowledged; suggestions announced since it was sent (a registration's id is
        only known now) are asked about too."""
        with self.lock:
            w.org_id, w.acked = org_id, at
            self.by_org[org_id] = w
            self._offer(w, [(pair, when) for pair, when in self.suggested.get(org_id, []) if when >= w.sent])

    def next_candidate(self, w: Write) -> tuple[str, float] | None:
        """The newest suggestion of a write not asked about yet; None (and out of the queue) when
        it is visible or none is left."""
        with self.lock:
            if w.visible is None and w.candidates:
                return w.candidates.pop()
            w.queued = False
            return None

    def defer(self, w: Write, candidate: tuple[str, float]) -> None:
        """A suggestion of a write the matcher has not applied yet: asked about once it has."""
        with self.lock:
            if w.visible is None:
                w.deferred.append(candidate)
                w.early.add(candidate[0])
                self.deferred[id(w)] = w

    def waiting_for_apply(self, every_s: float) -> list[Write]:
        """The writes with deferred suggestions, when no confirmer has looked at them for `every_s`
        (the confirmers take turns: one look every `every_s` in all); else none."""
        with self.lock:
            now = time.monotonic()
            if not self.deferred or now - self.rechecked < every_s:
                return []
            self.rechecked = now
            return list(self.deferred.values())

    def applied(self, writes: list[Write]) -> None:
        """These writes are applied now: their deferred suggestions are offered again."""
        with self.lock:
            for w in writes:
                if self.deferred.pop(id(w), None) is not None:
                    pairs, w.deferred = w.deferred, []
                    self._offer(w, pairs)

    def on_profile_event(self, org_id: str, revision: int, at: float) -> None:
        with self.lock:
            w = self.by_org.get(org_id)
            if w is not None and w.revision == revision and w.published is None:
                w.published = at

    def on_suggested(self, pair_id: str, orgs: tuple[str, str], at: float) -> None:
        with self.lock:
            for org in orgs:
                self.suggested.setdefault(org, []).append((pair_id, at))
                w = self.by_org.get(org)
                if w is not None and w.acked is not None:
                    self._offer(w, [(pair_id, at)])


def follow_topics(bootstrap: str, tracker: Tracker, stop: threading.Event) -> list[threading.Thread]:
    """Readers of `profiles` and `matches` from their current ends, feeding the tracker."""
    from partnermatch import events
    from partnermatch.messaging import Record, TableReader, read_partitions
    from partnermatch.topics import MATCHES, PROFILES

    def on_profiles(record: Record) -> None:
        envelope = events.decode(record.value)
        if envelope.event_type == events.PROFILE_UPSERTED:
            tracker.on_profile_event(envelope.payload["org_id"], int(envelope.payload["revision"]), time.time())

    def on_matches(record: Record) -> None:
        envelope = events.decode(record.value)
        if envelope.event_type == events.MATCH_SUGGESTED:
            p = envelope.payload
            tracker.on_suggested(p["pair_id"], (p["org_a"], p["org_b"]), time.time())

    threads = []
    for topic, apply in ((PROFILES, on_profiles), (MATCHES, on_matches)):
        ends: dict[int, int] = {}
        for record in read_partitions(bootstrap, topic, idle_timeout_s=2.0):
            ends[record.partition] = record.offset + 1
        # The bench learns a pair's id from `matches` before it asks the review API, which reads the
        # matcher's Redis: how late its reader sees the event is the instrument's, not the
        # coordinator's, so it fetches with a wait shorter than kafka-python's 500 ms (see
        # messaging.FETCH_WAIT_MS); not much shorter: at 10 ms its two readers and the broker's
        # answers to them took some 0.2 of a core from the stack it measures
        reader = TableReader(
            bootstrap, topic, apply, client_id=f"bench-{topic}", start=ends, fetch_wait_ms=WATCH_FETCH_WAIT_MS
        )
        thread = threading.Thread(target=reader.run, args=(stop,), name=f"follow-{topic}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


WATCH_FETCH_WAIT_MS = 100  # the bench's readers of `profiles` and `matches` (follow_topics), as the matcher's
RECHECK_S = 0.05  # how often the confirmers look whether writes with deferred suggestions are applied


def offer_applied(tracker: Tracker, store: redis.Redis) -> None:
    """The writes with suggestions deferred (announced before the write was applied) that the
    matcher's Redis shows applied now: their suggestions are offered to the confirmers again. One
    HMGET every RECHECK_S for all the confirmers."""
    from services.matcher.adapters.redis_state import REVISIONS

    waiting = tracker.waiting_for_apply(RECHECK_S)
    if waiting:
        revisions = store.hmget(REVISIONS, [w.org_id for w in waiting])
        tracker.applied([w for w, rev in zip(waiting, revisions, strict=True) if int(rev or 0) >= w.revision])


def confirm(review: str, coordinators: dict[str, str], tracker: Tracker, redis_url: str, stop: threading.Event) -> None:
    """Ask the review API, as the coordinator of the written organisation's cluster, for each
    suggestion the matches topic announced, until one shows the organisation as written. A
    suggestion announced before the matcher applied the write is asked about once it has."""
    import redis

    from services.matcher.adapters.redis_state import PAIR, REVISIONS

    store = redis.Redis.from_url(redis_url)
    host, _, port = review.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    while not stop.is_set():
        offer_applied(tracker, store)
        try:
            w = tracker.to_confirm.get(timeout=RECHECK_S)
        except queue.Empty:
            continue
        while not stop.is_set() and (candidate := tracker.next_candidate(w)) is not None:
            pair_id, suggested = candidate
            raw, applied = store.pipeline(transaction=False).get(PAIR + pair_id).hget(REVISIONS, w.org_id).execute()
            if raw is None or json.loads(raw)["updated_ms"] / 1000 < w.sent:
                continue  # last written before the write was sent: a later rewrite is announced again
            if int(applied or 0) < w.revision:
                # Written after the write was sent, maybe with its texts by another organisation's
                # plan, while the write itself is not applied (its profile as written not readable
                # yet): asked about once it is, since the write's own plan may leave it as it is.
                tracker.defer(w, candidate)
                continue
            w.asked += 1
            try:
                conn.request(
                    "GET", f"/v1/suggestions/{pair_id}", headers={"Authorization": f"Bearer {coordinators[w.cluster]}"}
                )
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()  # reconnects at the next request
                continue
            at = time.time()
            if response.status != 200:
                continue
            view = json.loads(body)
            org_view = next((p for p in (view["own"], view["partner"]) if p["org_id"] == w.org_id), None)
            as_written = org_view is not None and (w.marker is None or w.marker in (org_view.get("goals") or ""))
            if view["state"] == "pending" and as_written:
                with tracker.lock:
                    w.visible, w.suggested, w.written = at, suggested, json.loads(raw)["updated_ms"] / 1000
                    w.early_outcome = pair_id in w.early


def confirm_none(
    review: str, coordinators: dict[str, str], tracker: Tracker, redis_url: str, stop: threading.Event
) -> None:
    """For the writes the matcher applied leaving their organisation with no pending pair (its
    Redis: the organisation's revision, and its pending pairs), ask the review API, as the
    coordinator of the organisation's cluster, for the cluster's pending suggestions naming it
    (GET /v1/suggestions?q=<its name>): an answer with none of the organisation's is what a
    coordinator is shown of the write, timed as `shown_none`. A suggestion seen later still counts
    as the write's (visible): the outcome is the suggestion when there is one (the report prints the
    earlier of the two apart, "first shown")."""
    import urllib.parse

    import redis

    from services.matcher.adapters.redis_state import PENDING_BY_ORG, REVISIONS

    store = redis.Redis.from_url(redis_url)
    host, _, port = review.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    while not stop.wait(0.25):
        with tracker.lock:
            open_ = [w for w in tracker.by_org.values() if w.visible is None and w.shown_none is None]
        if not open_:
            continue
        revisions = store.hmget(REVISIONS, [w.org_id for w in open_])
        applied = [w for w, rev in zip(open_, revisions, strict=True) if int(rev or 0) >= w.revision]
        with store.pipeline(transaction=False) as pipe:
            for w in applied:
                pipe.zcard(PENDING_BY_ORG + (w.org_id or ""))
            counts = pipe.execute()
        for w in (w for w, count in zip(applied, counts, strict=True) if count == 0):
            query = urllib.parse.urlencode({"q": w.name, "page_size": 100})
            w.asked += 1
            try:
                conn.request(
                    "GET", f"/v1/suggestions?{query}", headers={"Authorization": f"Bearer {coordinators[w.cluster]}"}
                )
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                continue
            at = time.time()
            if response.status != 200:
                continue
            shown = {p["org_id"] for item in json.loads(body) for p in (item["own"], item["partner"])}
            if w.org_id not in shown:
                with tracker.lock:
                    if w.visible is None:
                        w.shown_none = at


def send_writes(api: str, writes: list[Write], rate: float, tracker: Tracker, senders: int) -> float:
    """Each write at its slot of the schedule (open loop: a slow answer delays no later write
    unless every sender is busy); returns when the schedule started (time.time())."""
    host, _, port = api.removeprefix("http://").partition(":")
    started = time.time() + 0.5
    counter = itertools.count()
    counter_lock = threading.Lock()

    def sender() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        while True:
            with counter_lock:
                i = next(counter)
            if i >= len(writes):
                return
            w = writes[i]
            time.sleep(max(0.0, started + i / rate - time.time()))
            w.sent = time.time()
            if w.kind == "patch":
                method, path, token = "PATCH", f"/v1/organisations/{w.org_id}", w.token
            else:
                method, path, token = "POST", "/v1/organisations", None
            headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
            try:
                conn.request(method, path, json.dumps(w.body).encode(), headers)
                response = conn.getresponse()
                answer = json.loads(response.read())
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                continue
            if response.status in (200, 201):
                org_id = answer["organisation"]["id"] if w.kind == "register" else answer["id"]
                tracker.acknowledged(w, org_id, time.time())

    threads = [threading.Thread(target=sender, name=f"sender-{i}") for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return started


def applied_writes(client: redis.Redis, writes: list[Write]) -> int:
    """How many acknowledged writes the matcher has applied (its revision of the organisation)."""
    from services.matcher.adapters.redis_state import REVISIONS

    acked = [w for w in writes if w.acked is not None]
    revisions = client.hmget(REVISIONS, [w.org_id for w in acked]) if acked else []
    return sum(1 for w, rev in zip(acked, revisions, strict=True) if rev is not None and int(rev) >= w.revision)


def settled(pid: int, window_s: float = 8.0, busy_share: float = 0.2) -> bool:
    """Whether the process used under `busy_share` of a core for `window_s` (longer than the 5 s
    of quiet after which the matcher learns the weights again, MATCHER_REWEIGH_QUIET_S). A matcher
    with nothing to do still polls its two consumers (each fetch held MATCHER_FETCH_WAIT_MS at the
    broker): some 4 % of a core at 100 ms, 8 % at 50; planning its lists takes a whole one. Once the preload is
    applied the matcher's table goes quiet, so it learns the weights again from the new corpus and
    plans every list with them (a minute or more at 10,000, see SharedIndex.refresh_weights). Writes
    sent meanwhile measure that pass, which a steady platform runs spaced out (REWEIGH_SPACING), not
    the event path: the writes wait for it unless --no-settle."""
    before = cpu_seconds([pid])
    time.sleep(window_s)
    return cpu_seconds([pid]) - before < busy_share * window_s


def percentile(ms: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ms[min(len(ms) - 1, round(share * (len(ms) - 1)))]


def unseen_report(client: redis.Redis, writes: list[Write]) -> None:
    """Of the acknowledged writes never seen, how many the matcher applied, and how many of those
    left their organisation with no pending pair at all (nothing a coordinator could be shown) or
    with pending pairs none of which was suggested again after the write (no `match.suggested` for
    the bench to follow: a PATCH that moved no pair's score or reasons)."""
    from services.matcher.adapters.redis_state import PAIR, PENDING_BY_ORG, REVISIONS

    unseen = [w for w in writes if w.acked is not None and w.visible is None and w.shown_none is None]
    if not unseen:
        return
    applied = no_pair = not_again = 0
    for w in unseen:
        assert w.org_id is not None, "acknowledged: its id is known"
        if int(client.hget(REVISIONS, w.org_id) or 0) < w.revision:
            continue
        applied += 1
        pending = [m.decode() for m in client.zrange(PENDING_BY_ORG + w.org_id, 0, -1)]
        if not pending:
            no_pair += 1
            continue
        records = [json.loads(raw) for raw in client.mget([PAIR + p for p in pending]) if raw]
        if all(r["updated_ms"] / 1000 < (w.sent or 0) for r in records):
            not_again += 1
    print(
        f"neither seen nor shown with no suggestion {len(unseen)}: applied by the matcher {applied}; of those, "
        f"left with no pending pair "
        f"{no_pair}, with pending pairs none written again after the write {not_again}"
    )


def none_report(client: redis.Redis, writes: list[Write], max_pending: int) -> None:
    """Clues to why writes left their organisation with no pending pair: the bench reuses few texts
    (the seekers' dev set), so many organisations share one, and with equal scores each is the
    others' best partner; each holds at most `max_pending` pending pairs, a pair that beats the
    weakest by no more than MATCHER_DISPLACE_MARGIN displaces none, and a list holds its top few: how
    full the organisations sharing their texts are. And a list that wants a partner whose profile is
    not applied yet waits (AWAITING)."""
    from services.matcher.adapters.redis_state import AWAITING, PENDING_BY_ORG

    alone = [w for w in writes if w.acked is not None and w.visible is None and w.shown_none is not None]
    if not alone:
        return
    waiting: set[str] = set()  # organisations whose lists want a partner whose profile is not applied yet
    for key in client.scan_iter(match=AWAITING + "*", count=1000):
        waiting.update(m.decode() for m in client.smembers(key))
    texts = {w.text for w in alone}
    sharing = [w for w in writes if w.acked is not None and w.text in texts and w.org_id]
    with client.pipeline(transaction=False) as pipe:
        for w in sharing:
            pipe.zcard(PENDING_BY_ORG + (w.org_id or ""))
        counts = dict(zip((id(w) for w in sharing), pipe.execute(), strict=True))
    others = [counts[id(o)] for w in alone for o in sharing if o.text == w.text and o is not w]
    full = sum(1 for c in others if c >= max_pending)
    texts_used = {w.text for w in writes}
    print(
        f"shown with no suggestion {len(alone)} ({len(texts)} of the {len(texts_used)} texts): the other "
        f"organisations written with their texts hold {max_pending} pending pairs (the most allowed) in {full} "
        f"of {len(others)} cases; {sum(1 for w in alone if w.org_id in waiting)} of them want a partner whose profile "
        "the matcher has not applied yet (their pairs are written once it is)"
    )


def quantiles(seconds: list[float], never: int = 0) -> str:
    """p50/p95/max of latencies in seconds; `never` more that did not happen count as infinitely late."""
    if not seconds and not never:
        return "none"
    ms = sorted(1000 * v for v in seconds) + [float("inf")] * never

    def shown(value: float) -> str:
        return f"{value:7.0f} ms" if value != float("inf") else "  not seen"

    return f"p50 {shown(percentile(ms, 0.5))}   p95 {shown(percentile(ms, 0.95))}   max {shown(ms[-1])}   (n={len(ms)})"


def report(writes: list[Write], started: float, last_ack: float, grace_s: float) -> float:
    """Prints what was measured; returns the p95 of ack → outcome shown over every acknowledged
    write: its suggestion visible, or, where the matcher applied it leaving the organisation no pending
    pair, the review API showing none of it (infinite when more than a twentieth had neither)."""
    acked = [w for w in writes if w.acked is not None]
    seen = [w for w in acked if w.visible is not None]
    span = max(last_ack - started, 1e-9)
    print()
    print(
        f"writes sent {sum(1 for w in writes if w.sent)}, acknowledged {len(acked)}, seen by a coordinator "
        f"{len(seen)}, not seen within {grace_s:.0f} s after the last {len(acked) - len(seen)}"
    )
    print(f"achieved write rate: {len(acked) / span:.1f} acknowledged writes/s over {span:.1f} s")
    print(f"calls to the review API: {sum(w.asked for w in writes)}")
    print()
    print("ack → visible to the coordinator (the review API answered GET /v1/suggestions/<pair> with it), every")
    print("acknowledged write, those never seen counted as later than all:")
    for kind in ("register", "patch", None):
        label = {"register": "registrations", "patch": "PATCHes", None: "all writes"}[kind]
        chosen = [w for w in acked if kind is None or w.kind == kind]
        visible = [w.visible - w.acked for w in chosen if w.visible is not None]  # type: ignore[operator]
        print(f"  {label:<14} {quantiles(visible, len(chosen) - len(visible))}")
    print("where the time goes, for the writes seen (each step from the ack):")
    steps = (
        ("write acknowledged (sent → ack)", [w.acked - w.sent for w in acked]),  # type: ignore[operator]
        ("on the profiles topic (relay)", [w.published - w.acked for w in seen if w.published]),  # type: ignore[operator]
        ("pair written by the matcher", [w.written - w.acked for w in seen if w.written]),  # type: ignore[operator]
        ("match.suggested at the bench", [w.suggested - w.acked for w in seen if w.suggested]),  # type: ignore[operator]
        ("review API answered", [w.visible - w.acked for w in seen]),  # type: ignore[operator]
    )
    for label, values in steps:
        print(f"  {label:<34} {quantiles(values)}")
    early = [w for w in seen if w.early_outcome]
    print(
        f"  seen through a suggestion announced before the matcher applied the write (another organisation's plan"
        f" wrote it; asked once the write was applied): {sum(1 for w in early if w.kind == 'patch')} PATCHes,"
        f" {sum(1 for w in early if w.kind == 'register')} registrations"
    )
    shown_none = [w for w in acked if w.visible is None and w.shown_none is not None]
    print()
    print("ack → the write's outcome shown to the coordinator: its suggestion (as above), or for a write the matcher")
    print("applied leaving its organisation no pending pair, the review API's list of the cluster's pending")
    print("suggestions showing none of it; those with neither counted as later than all:")
    outcome = [w.visible - w.acked for w in seen] + [w.shown_none - w.acked for w in shown_none]  # type: ignore[operator]
    print(f"  {'all writes':<14} {quantiles(outcome, len(acked) - len(outcome))}")
    print(f"  {'no suggestion':<14} {quantiles([w.shown_none - w.acked for w in shown_none])}")  # type: ignore[operator]
    # A write shown first with no suggestion (its own event left its organisation none) may get one
    # later from another organisation's event or a refresh of the weights; the outcome above is then
    # that suggestion, which is not what the write made. The earlier of the two, beside it:
    first = [min(t for t in (w.visible, w.shown_none) if t is not None) - w.acked for w in seen + shown_none]  # type: ignore[operator]
    later = [w for w in seen if w.shown_none is not None]
    print(
        f"  {'first shown':<14} {quantiles(first, len(acked) - len(first))}   (of the writes, {len(later)} were shown "
        f"first with no suggestion and a suggestion later: {sum(w.visible - w.acked > 2 for w in later)} after 2 s)"  # type: ignore[operator]
    )
    ms = sorted(outcome) + [float("inf")] * (len(acked) - len(outcome))
    return percentile(ms, 0.95) if ms else float("inf")


@contextlib.contextmanager
def threads_sampled(folder: str | None, pid: int, longest_s: int) -> Iterator[None]:
    """py-spy records every thread of one process while the block runs, waiting ones too (--idle),
    each thread apart (--threads): into folder/matcher-threads.txt."""
    if folder is None:
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--idle", "--threads", "--format", "raw", "--rate", "100"]
        + ["--duration", str(longest_s), "--nonblocking", "--output", str(Path(folder) / "matcher-threads.txt")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # it writes what it has sampled so far
        spy.wait(timeout=60)


def cpu_report(cpu: dict[str, float], seconds: float) -> None:
    print(f"CPU from the first write until the last was seen or given up ({seconds:.0f} s), in cores:")
    print("  " + ", ".join(f"{name} {used / seconds:.2f}" for name, used in sorted(cpu.items(), key=lambda kv: -kv[1])))


def run_phase(
    rate: float,
    writes: list[Write],
    api: str,
    tracker: Tracker,
    client: redis.Redis,
    parts: dict[str, int],
    args: argparse.Namespace,
) -> float:
    """Send the writes at `rate`, wait for their outcomes to be shown (or --grace-s), print what was
    measured; returns the p95 of ack → outcome shown (see report)."""
    from services.matcher.config import MatcherSettings

    max_pending = MatcherSettings.from_env().max_pending_per_org
    cpu_before = {name: cpu_seconds([pid]) for name, pid in parts.items()}
    print(
        f"\n{len(writes)} writes ({args.mix}) at {rate:g}/s for {args.duration:g} s, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores ...",
        flush=True,
    )
    started = time.monotonic()
    profile = str(Path(args.profile) / f"rate-{rate:g}") if args.profile else None
    longest_s = round(args.duration + args.grace_s) + 10
    with (
        sampled(profile, {name: pid for name, pid in parts.items() if name in PROFILED}, round(args.duration) + 10),
        threads_sampled(profile, parts["matcher"], longest_s),
    ):
        schedule_start = send_writes(api, writes, rate, tracker, args.senders)
        acked = sum(1 for w in writes if w.acked is not None)
        all_applied: list[float] = []  # when the matcher had applied every acknowledged write

        def every_write_seen() -> bool:
            if not all_applied and applied_writes(client, writes) == acked:
                all_applied.append(time.time())
            return all(w.visible is not None or w.shown_none is not None for w in writes if w.acked is not None)

        wait_for("every acknowledged write's outcome shown", every_write_seen, args.grace_s)
        busy_seconds = time.monotonic() - started
        applied = applied_writes(client, writes)
        cpu = {name: cpu_seconds([pid]) - cpu_before[name] for name, pid in parts.items()}
    last_ack = max((w.acked for w in writes if w.acked), default=schedule_start)
    p95 = report(writes, schedule_start, last_ack, args.grace_s)
    if args.writes_json:
        kept_writes(writes, Path(args.writes_json).with_suffix(f".rate-{rate:g}.json"))
    unseen_report(client, writes)
    none_report(client, writes, max_pending)
    cpu_report(cpu, busy_seconds)
    print(
        f"the matcher applied {applied} of the {acked} writes in those {busy_seconds:.0f} s: "
        f"{applied / busy_seconds:.1f} a second",
        flush=True,
    )
    if all_applied:
        took = all_applied[0] - schedule_start
        print(f"  every one applied {took:.0f} s after the first was sent: {acked / took:.1f} a second", flush=True)
    return p95


def kept_writes(writes: list[Write], path: Path) -> None:
    """Each acknowledged write's times (seconds after its ack) and what it was, for a look at the
    slowest ones (--writes-json)."""

    def after(w: Write, at: float | None) -> float | None:
        return None if at is None or w.acked is None else round(at - w.acked, 4)

    kept = [
        {
            "kind": w.kind,
            "org_id": w.org_id,
            "revision": w.revision,
            "text": w.text,
            "sent": after(w, w.sent),
            "published": after(w, w.published),
            "written": after(w, w.written),
            "suggested": after(w, w.suggested),
            "visible": after(w, w.visible),
            "shown_none": after(w, w.shown_none),
            "asked": w.asked,
            "announced_before_applied": len(w.early),
            "outcome_announced_before_applied": w.early_outcome,
        }
        for w in writes
        if w.acked is not None
    ]
    path.write_text(json.dumps(kept, indent=0) + "\n", encoding="utf-8")
    print(f"each write's times: {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="organisations registered before the writes")
    parser.add_argument(
        "--rate", type=float, nargs="+", default=[50], help="writes per second; several: one phase each, in turn"
    )
    parser.add_argument("--duration", type=float, default=60, help="seconds of writes (of each phase)")
    parser.add_argument(
        "--grace-s", type=float, default=60, help="how long after the last write to wait for suggestions still to come"
    )
    parser.add_argument("--mix", choices=("both", "patch", "register"), default="both")
    parser.add_argument(
        "--senders", type=int, default=32, help="threads sending the writes (open loop: enough to keep the rate)"
    )
    parser.add_argument("--confirmers", type=int, default=4, help="threads asking the review API")
    parser.add_argument(
        "--catch-up-s", type=float, default=1800, help="how long the matcher may take to read the preload"
    )
    parser.add_argument(
        "--no-settle",
        dest="settle",
        action="store_false",
        help="start the writes as soon as the preload is applied, while the weights learnt from it are still"
        " being applied to every list (see settled())",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="sample the API, both relays, the matcher and the review API with py-spy while writing; stacks into DIR",
    )
    parser.add_argument("--keep", metavar="DIR", help="run in DIR and keep its logs (default: a temporary folder)")
    parser.add_argument(
        "--writes-json",
        metavar="FILE",
        help="write each acknowledged write's times (after its ack) to FILE (.rate-<rate>.json), for the slowest",
    )
    args = parser.parse_args()

    import redis

    from launcher.procs import free_port
    from launcher.stack import Stack
    from services.matcher.adapters.redis_state import REVISIONS

    texts = seeker_texts()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(args.keep or tmp).resolve()
        ports = {name: str(free_port()) for name in ("PROFILES_PORT", "MATCHER_PORT", "NOTIFIER_PORT", "MAILSINK_PORT")}
        env = {
            **os.environ,
            **ports,
            "NOTIFIER_SMTP_PORT": ports["MAILSINK_PORT"],
            "MAILSINK_DIR": str(state / "mail"),
            "PARTNERMATCH_UP_METRICS_PORT": "0",
        }
        print(f"starting the stack in {state} ...", flush=True)
        stack = Stack(state / "stack", env=env, echo=False)
        stop = threading.Event()
        try:
            stack.start()
            api = f"http://127.0.0.1:{ports['PROFILES_PORT']}"
            review = f"http://127.0.0.1:{ports['MATCHER_PORT']}"
            client = redis.Redis.from_url(stack.env["REDIS_URL"])
            coordinators, countries, orgs = preload(api, stack.env["PARTNERMATCH_ADMIN_TOKEN"], args.n, 8)

            def matcher_caught_up() -> bool:  # every organisation applied once, every suggestion published
                return client.hlen(REVISIONS) >= len(orgs) and client.xlen(MATCHER_OUTBOX) == 0

            started = time.monotonic()
            if not wait_for("the matcher read the preload", matcher_caught_up, args.catch_up_s):
                return 1
            print(f"  the matcher read them and published its suggestions in {time.monotonic() - started:.0f} s")
            specs = zip(stack.started_specs, stack.services, strict=True)
            matcher_pid = next(proc.pid for spec, proc in specs if spec.name == "matcher")
            started = time.monotonic()
            if args.settle and not wait_for("the matcher to settle", lambda: settled(matcher_pid), args.catch_up_s):
                return 1
            if args.settle:
                settling = time.monotonic() - started
                print(f"  then learnt the weights again and planned every list with them: idle {settling:.0f} s later")
            rng = random.Random(5)
            targets = sorted(orgs.items())
            rng.shuffle(targets)
            tracker = Tracker()
            follow_topics(stack.env["KAFKA_BOOTSTRAP_SERVERS"], tracker, stop)
            for _ in range(args.confirmers):
                threading.Thread(
                    target=confirm, args=(review, coordinators, tracker, stack.env["REDIS_URL"], stop), daemon=True
                ).start()
            threading.Thread(
                target=confirm_none, args=(review, coordinators, tracker, stack.env["REDIS_URL"], stop), daemon=True
            ).start()
            parts = {spec.name: proc.pid for spec, proc in zip(stack.started_specs, stack.services, strict=True)}
            parts["redis"] = stack.redis.pid  # type: ignore[union-attr]
            if stack.broker is not None:
                parts["kafka"] = stack.broker.pid
            p95s = []
            for rate in args.rate:
                writes = plan_writes(round(rate * args.duration), countries, targets, texts, args.mix, rng)
                p95s.append(run_phase(rate, writes, api, tracker, client, parts, args))
        finally:
            stop.set()
            stack.stop()
    print(f"load average of the machine (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    met = all(p95 < 2.0 for p95 in p95s)
    print(
        f"p95 of ack → the write's outcome shown to the coordinator under 2 s at every rate: {'yes' if met else 'NO'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
