"""Parquet persistence: one file per table, written atomically, with run metadata in the schema."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

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


def write_table(out_dir: Path, table: str, records: Sequence[object], metadata: Mapping[str, str]) -> Path:
    """Write a table atomically: a temp file in the same folder, fsynced, then renamed over."""
    out_dir.mkdir(parents=True, exist_ok=True)
    arrow = to_arrow(records, TABLES[table])
    arrow = arrow.replace_schema_metadata({f"callqa.{k}": v for k, v in metadata.items()})
    path = table_path(out_dir, table)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{table}.", suffix=".parquet.tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs follow the umask like any file
        with os.fdopen(fd, "wb") as f:
            pq.write_table(arrow, f, compression=COMPRESSION)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_table(out_dir: Path, table: str) -> list:
    """Records of one table; an absent table is empty."""
    path = table_path(out_dir, table)
    if not path.is_file():
        return []
    return from_arrow(pq.read_table(path), TABLES[table])


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
