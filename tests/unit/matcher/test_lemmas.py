"""The lemma index: the same lemmas as simplemma's dictionary stage, built once and reopened."""

from __future__ import annotations

import simplemma

from services.matcher.engine.lemmas import SIMPLEMMA_VERSION, LemmaIndex

# Albanian: simplemma's smallest dictionary of our languages, so the build stays quick.
WORDS = ["bujqësisë", "ndërmarrjeve", "teknologjinë", "shkollave", "qytetit"]


def test_lemmas_are_simplemmas_and_survive_a_reopen(tmp_path):
    built = LemmaIndex(tmp_path)
    first = {w: built.lemma(w, "sq") or w for w in WORDS}
    assert first == {w: simplemma.lemmatize(w, lang="sq") for w in WORDS}
    assert any(first[w] != w for w in WORDS)  # real inflected forms, not a no-op
    folder = tmp_path / f"simplemma-{SIMPLEMMA_VERSION}" / "sq"
    assert (folder / "keys.npy").is_file()

    reopened = LemmaIndex(tmp_path)
    assert {w: reopened.lemma(w, "sq") or w for w in WORDS} == first


def test_a_word_outside_the_dictionary_has_no_lemma(tmp_path):
    assert LemmaIndex(tmp_path).lemma("xqzptrw", "sq") is None


def test_the_case_of_the_first_letter_is_tried_both_ways(tmp_path):
    index = LemmaIndex(tmp_path)
    assert index.lemma("Bujqësisë", "sq") == index.lemma("bujqësisë", "sq") != "Bujqësisë"


def test_an_unreadable_index_is_rebuilt(tmp_path):
    LemmaIndex(tmp_path).lemma("qytetit", "sq")
    folder = tmp_path / f"simplemma-{SIMPLEMMA_VERSION}" / "sq"
    (folder / "vals.npy").write_bytes(b"not numpy")
    assert LemmaIndex(tmp_path).lemma("qytetit", "sq") == simplemma.lemmatize("qytetit", lang="sq")


def test_without_a_folder_the_index_lives_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    index = LemmaIndex(None)
    assert index.lemma("qytetit", "sq") == simplemma.lemmatize("qytetit", lang="sq")
    assert list(tmp_path.iterdir()) == []
