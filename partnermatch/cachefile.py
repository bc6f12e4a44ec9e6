"""Pickled copies of things that are slow to build and never change for an installation (the
decoded language model, the compiled lexicon), kept in a folder of our own. Loading a pickle runs
code: the folder must be writable only by those who install and run partnermatch."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


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
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f"{path.name}.", suffix=".partial",
                                         delete=False) as tmp:
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
