"""Lemmas from simplemma's dictionaries, looked up without loading them at every start.

simplemma 2 ships one lzma-compressed, front-coded dictionary per language and decodes it in
pure Python on first use (about 1.5 s per language, 14 languages here) and keeps at most eight
in memory, so a text mixing all our languages decodes dictionaries again and again. This module
decodes each language once per installation into a small on-disk index: the sorted 64-bit
hashes of the dictionary's word forms (memory-mapped, binary-searched with numpy) and the
lemma of each. Opening it costs milliseconds; a look-up is one hash and one search.

What a look-up does is simplemma's dictionary stage: the word as given (NFC), then with its
first letter's case flipped (German nouns). Words outside the dictionary stay as they are
(simplemma's guessing stages for unknown words are not used: a wrong guess would make two
unrelated words meet). A hash collision can only lemmatise a word that is in no dictionary,
with a chance of about one in 10^12 per word.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
import unicodedata
from pathlib import Path

import numpy as np
import simplemma

logger = logging.getLogger(__name__)

SIMPLEMMA_VERSION = getattr(simplemma, "__version__", "unknown")
# simplemma's language codes for our languages (Serbian, Croatian and Bosnian share "hbs").
CODES = ("pl", "hbs", "sl", "mk", "bg", "ru", "uk", "cs", "sk", "ro", "hu", "sq", "de", "en")
_FILES = ("lemmas.txt", "vals.npy", "keys.npy")  # written in this order; keys.npy marks complete


def _hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def _decode(code: str) -> dict[str, str]:
    """simplemma's dictionary for one language as a plain dict (seconds: it decodes in Python)."""
    from simplemma.strategies.dictionaries.dictionary_factory import DefaultDictionaryFactory

    mapping = DefaultDictionaryFactory(cache_max_size=1).get_dictionary(code)
    raw = getattr(mapping, "_dict", None)
    if isinstance(raw, dict):  # bytes -> bytes inside simplemma 2; decode it in one go
        return {k.decode("utf-8"): v.decode("utf-8") for k, v in raw.items()}
    return {k: mapping[k] for k in mapping}


class _Table:
    """One language: sorted hashes, the lemma number of each, the lemmas."""

    def __init__(self, keys: np.ndarray, vals: np.ndarray, lemmas: list[str]) -> None:
        self.keys, self.vals, self.lemmas = keys, vals, lemmas

    @classmethod
    def build(cls, code: str) -> _Table:
        forms = _decode(code)
        lemma_no: dict[str, int] = {}
        hashes = np.fromiter((_hash(f) for f in forms), np.uint64, count=len(forms))
        vals = np.fromiter((lemma_no.setdefault(v, len(lemma_no)) for v in forms.values()), np.uint32, count=len(forms))
        order = np.argsort(hashes, kind="stable")
        return cls(hashes[order], vals[order], list(lemma_no))

    @classmethod
    def open(cls, folder: Path) -> _Table:
        # Mapped, not read: pages load as look-ups touch them and are shared between processes.
        # Plain ndarray views of the maps: indexing a np.memmap costs some 20 µs a time.
        keys = np.asarray(np.load(folder / "keys.npy", mmap_mode="r"))
        vals = np.asarray(np.load(folder / "vals.npy", mmap_mode="r"))
        lemmas = (folder / "lemmas.txt").read_text(encoding="utf-8").split("\n")
        if len(keys) != len(vals):
            raise ValueError(f"lemma index in {folder} is inconsistent")
        return cls(keys, vals, lemmas)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in _FILES:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
            with os.fdopen(fd, "wb") as f:
                if name == "lemmas.txt":
                    f.write("\n".join(self.lemmas).encode("utf-8"))
                else:
                    np.save(f, self.keys if name == "keys.npy" else self.vals)
            os.replace(tmp, folder / name)

    def get(self, word: str) -> str | None:
        h = np.uint64(_hash(word))
        i = int(np.searchsorted(self.keys, h))
        if i < len(self.keys) and self.keys[i] == h:
            return self.lemmas[int(self.vals[i])]
        return None


class LemmaIndex:
    """Lemma look-ups for every language, each language's index opened (or built) on first use.

    `folder` keeps built indexes between runs (one sub-folder per simplemma version); None keeps
    them in memory only. Thread-safe."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = (Path(folder).expanduser() / f"simplemma-{SIMPLEMMA_VERSION}") if folder else None
        self._tables: dict[str, _Table] = {}
        self._lock = threading.Lock()

    def table(self, code: str) -> _Table:
        found = self._tables.get(code)
        if found is not None:
            return found
        with self._lock:
            if code not in self._tables:
                self._tables[code] = self._load(code)
            return self._tables[code]

    def _load(self, code: str) -> _Table:
        place = self.folder / code if self.folder is not None else None
        if place is not None and (place / "keys.npy").is_file():
            try:
                return _Table.open(place)
            except (OSError, ValueError) as exc:
                logger.warning("lemma index unreadable; rebuilding", extra={"path": str(place), "error": str(exc)})
        started = time.monotonic()
        table = _Table.build(code)
        logger.info(
            "lemma index built",
            extra={"language": code, "forms": len(table.keys), "seconds": round(time.monotonic() - started, 2)},
        )
        if place is not None:
            try:
                table.save(place)
            except OSError as exc:
                logger.warning(
                    "could not save the lemma index; it is kept in memory",
                    extra={"path": str(place), "error": str(exc)},
                )
        return table

    def lemma(self, word: str, code: str) -> str | None:
        """The lemma of a word in simplemma's language `code`, or None when it is not a known form."""
        table = self.table(code)
        word = unicodedata.normalize("NFC", word)
        found = table.get(word)
        if found is None and word:
            flipped = word.lower() if word[:1].isupper() else word.capitalize()
            if flipped != word:
                found = table.get(flipped)
        return found

    def build_all(self, codes: tuple[str, ...] = CODES) -> dict[str, float]:
        """Open or build every language now; seconds per language."""
        spent = {}
        for code in codes:
            started = time.monotonic()
            self.table(code)
            spent[code] = round(time.monotonic() - started, 2)
        return spent
