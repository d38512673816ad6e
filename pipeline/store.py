"""Parquet persistence: one file per table, written atomically, with run metadata in the schema."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pandas as pd
import pyarrow.parquet as pq

from pipeline.errors import ConfigError
from pipeline.records import TABLES, from_arrow, to_arrow

COMPRESSION = "zstd"  # ~15% smaller than snappy here, at the same read speed


def table_path(out_dir: Path, table: str) -> Path:
    return out_dir / f"{table}.parquet"


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def atomic_file(path: Path, mode: str = "wb") -> Iterator[IO]:
    """A file that appears at `path` whole or not at all: written to a temp name in the same
    folder, fsynced, then renamed over. Its permissions follow the umask (mkstemp's are 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_table(out_dir: Path, table: str, records: Sequence[object], metadata: Mapping[str, str]) -> Path:
    """Write one table atomically, with the run's metadata in its schema."""
    arrow = to_arrow(records, TABLES[table])
    arrow = arrow.replace_schema_metadata({f"callqa.{k}": v for k, v in metadata.items()})
    with atomic_file(table_path(out_dir, table)) as f:
        pq.write_table(arrow, f, compression=COMPRESSION)
    return table_path(out_dir, table)


def write_text(folder: Path, name: str, text: str) -> Path:
    """Write a small text file atomically, like the tables."""
    with atomic_file(folder / name, "w") as f:
        f.write(text)
    return folder / name


def read_table(out_dir: Path, table: str) -> list:
    """Records of one table; an absent table is empty."""
    path = table_path(out_dir, table)
    if not path.is_file():
        return []
    return from_arrow(pq.read_table(path), TABLES[table])


def read_frame(out_dir: Path, table: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """One table as a DataFrame with its declared column types; an absent table is empty."""
    path = table_path(out_dir, table)
    if not path.is_file():
        return to_arrow([], TABLES[table]).to_pandas()
    return pq.read_table(path, columns=list(columns) if columns else None).to_pandas()


def read_metadata(out_dir: Path, table: str) -> dict[str, str]:
    """The callqa.* schema metadata of a table, without the prefix."""
    raw = pq.read_schema(table_path(out_dir, table)).metadata or {}
    return {k.decode().removeprefix("callqa."): v.decode() for k, v in raw.items() if k.startswith(b"callqa.")}


def require_transcribed(out_dir: Path) -> None:
    if not table_path(out_dir, "utterances").is_file():
        raise ConfigError(
            f"{out_dir} holds no utterances.parquet; run `callqa transcribe INPUT --out {out_dir}` first, "
            "or pass transcript files."
        )


def metadata_json(**values: object) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v, default=str) for k, v in values.items()}
