"""Where candidate lexicon forms would match in the labelled texts, before they are added.

Reads a YAML file of concepts in the lexicon's own format (`partnermatch/lexicon/README.md`;
each candidate concept holds only the new forms, and `sector:` is the sector it would count for;
its labels are forms too, so give it labels no text contains), compiles it alone, and matches it
over the capabilities and goals of every labelled organisation (the dev set and the seekers). For
each concept it prints how many organisations it hits, by their own sector, and each hit in an
organisation that neither is of that sector nor seeks it, with the words matched: those are the
forms to look at (a hotel's "bikes to rent", a furniture maker's "fittings", a marina builder).
Nothing is written.

Usage: python bench/lexicon_hits.py CANDIDATES.yaml [--all] [--exclude FILE ...]
  --all       print every hit, not only those outside the sector
  --exclude   leave out these files (their names without .jsonl, e.g. the held-out sets not yet
              measured: a check that reads them makes them dev data)
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality import read_jsonl  # noqa: E402

from services.matcher.engine.lexicon import load_lexicon  # noqa: E402
from services.matcher.engine.text import tokens  # noqa: E402

DATA = ROOT / "tests" / "data"


def labelled(excluded: set[str]) -> list[dict]:
    """Every labelled organisation: the dev set's and the seekers' files, but the excluded ones."""
    orgs = read_jsonl(DATA / "devset") + read_jsonl(DATA / "seekers")
    return [org for org in orgs if org["_file"] not in excluded]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", type=Path)
    parser.add_argument("--all", action="store_true", help="print every hit")
    parser.add_argument("--exclude", nargs="*", default=[], help="files to leave out, by name without .jsonl")
    args = parser.parse_args()
    lexicon = load_lexicon([args.candidates])
    sector_of = {
        cid: (c.sector or cid) for cid, c in lexicon.concepts.items() if c.kind not in ("cue", "country", "region")
    }
    hits: dict[str, list[tuple[dict, str]]] = defaultdict(list)
    orgs = labelled(set(args.exclude))
    for org in orgs:
        for text in (org["capabilities"], org["goals"]):  # apart: a phrase does not run from one into the other
            words = tokens(text)
            infos = [lexicon.token(word, org.get("language")) for word in words]
            for _, concept, said in lexicon.concepts_at(words, infos):
                concept = lexicon.asked.get(concept, concept)  # an asked form counts for its concept
                if concept in sector_of:
                    hits[concept].append((org, said))
    print(f"{len(orgs)} labelled organisations")
    for concept in sorted(sector_of):
        found = hits.get(concept, [])
        sector = sector_of[concept].split(".")[0]
        by_sector = Counter(org["sector"] for org, _ in {o["id"]: (o, s) for o, s in found}.values())
        print(f"{concept} ({sector}): {len(found)} hits in {sum(by_sector.values())} organisations, {dict(by_sector)}")
        for org, said in found:
            outside = org["sector"] != sector and sector not in (org.get("seeks") or [])
            if args.all or outside:
                print(f"    {'?' if outside else ' '} {org['id']} ({org['sector']}, seeks {org.get('seeks')}): {said}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
