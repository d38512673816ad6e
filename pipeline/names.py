"""Safe file names from untrusted values: call ids from transcripts, agent ids from sidecars.

Output files are named after call ids; a transcript may say `"call_id": "../../etc/cron.d/x"`.
Every name written under the output folder goes through `safe_name` (or `path_inside`), so
nothing lands outside it whatever the input says.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def safe_name(value: str) -> str:
    """`value` itself when it is a plain file name (letters, digits, `._-`, no leading dot, no
    `..`, at most 128 characters); otherwise a readable slug of it plus a short hash of the
    whole value, so two different unsafe values never share a name."""
    if _SAFE.fullmatch(value) and ".." not in value:
        return value
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", value).replace("..", "_").strip("._-")[:48]
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
    return f"{slug}-{digest}" if slug else digest


def path_inside(folder: Path, name: str) -> Path:
    """`folder / safe_name(name)`, checked to resolve inside `folder` (a symlink planted in the
    output folder cannot redirect it either)."""
    path = folder / safe_name(name)
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ValueError(f"refusing to write {path}: it resolves outside {folder}.")
    return path
