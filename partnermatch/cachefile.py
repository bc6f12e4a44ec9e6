"""The folder for what is built once per installation (the lemma index, see the matcher's
lemmas.py), and pickled copies kept there of things that are slow to build and never change for
an installation (the decoded language model, the compiled lexicon). Loading a pickle runs code:
the folder must be writable only by those who install and run partnermatch."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
DEFAULT_FOLDER = "~/.cache/partnermatch/lemmas"


class _Unchosen:
    """No folder chosen yet: the environment is read at the first use, never at import."""


_folder: Path | None | _Unchosen = _Unchosen()


def folder() -> Path | None:
    """The folder in use; None: keep nothing, build everything in memory. Unless chosen with
    `use_folder`, the PARTNERMATCH_LEMMA_INDEX setting, read here so that every process uses the
    same folder, the profiles service included; like every setting, empty means the default."""
    global _folder
    if isinstance(_folder, _Unchosen):
        _folder = Path(os.environ.get("PARTNERMATCH_LEMMA_INDEX") or DEFAULT_FOLDER).expanduser()
    return _folder


def use_folder(path: str | Path | None) -> None:
    """Use `path` from now on (None or "": keep nothing)."""
    global _folder
    _folder = Path(path).expanduser() if path else None


def read(path: Path) -> Any | None:
    """The object kept at `path`, or None when there is none or it cannot be read (logged)."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged or foreign copy: the caller builds and writes it again
        logger.warning("kept copy unreadable; building it again", extra={"path": str(path), "error": repr(exc)})
        return None


def write(path: Path, obj: Any) -> None:
    """Keep `obj` at `path`, atomically and readable by all (an image built as root serves its
    user). Failing to write is logged, not raised: the caller has the object anyway. A writer
    killed halfway leaves a `<name>.<random>.partial` file beside it, which the next write of the
    same copy removes."""
    written = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f"{path.name}.*.partial"):
            with contextlib.suppress(OSError):
                stale.unlink()
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f"{path.name}.", suffix=".partial", delete=False
        ) as tmp:
            written = tmp.name
            pickle.dump(obj, tmp, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(written, 0o644)
        os.replace(written, path)
        written = None
    except Exception as exc:  # a full disk, a read-only folder, an object that does not pickle
        logger.warning("cannot keep a copy", extra={"path": str(path), "error": repr(exc)})
    finally:
        if written is not None:
            with contextlib.suppress(OSError):
                os.unlink(written)
