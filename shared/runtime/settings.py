"""Typed settings for every service, read from `IMAGEGEN_*` environment variables.

One class, like arq's `WorkerSettings`: a service reads the fields it needs and ignores the rest,
so one environment file can configure the whole stack. `NATS_URL` and `DATABASE_URL` are honoured
as fallbacks because that is what operators and CI already export.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic_settings
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.contract.errors import ImagegenError
from shared.contract.submit import MAX_BATCH_SIZE

_NAME = r"[^\s.\x00]{1,63}"  # a Postgres name as stored (no dot, no space)
_IDENTIFIER = f"^{_NAME}$"
_FUNCTION = f"^{_NAME}(\\.{_NAME})?$"  # `name` or `schema.name`
_TEMP_FILE_LIMIT = r"^[1-9][0-9]*(kB|MB|GB|TB)?$"  # Postgres's own units; a bare number is kB


class DataSource(BaseModel):
    """One named data source of the db source: where it is and what a query on it may do.

    `IMAGEGEN_DATA_SOURCES` maps each name to an object of these fields, or to a bare DSN
    string (then every other field has its default). The limits are applied to every pooled
    connection; `shared/sources/db/` enforces the rest (docs/security.md).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dsn: str = Field(min_length=1, description="Postgres DSN, ideally of a role that may only SELECT.")
    statement_timeout_seconds: Annotated[float, Field(gt=0)] = 60.0
    temp_file_limit: Annotated[str, Field(pattern=_TEMP_FILE_LIMIT)] | None = Field(
        default="1GB",
        description="Temporary files one query may write ('500MB', '1GB'); the role needs "
        "`GRANT SET ON PARAMETER temp_file_limit` (PostgreSQL 15+). null: the role's own setting.",
    )
    idle_in_transaction_session_timeout_seconds: Annotated[float, Field(gt=0)] = Field(
        default=300.0,
        description="The server ends a job's transaction idle this long (e.g. renderers far behind).",
    )
    max_concurrent: Annotated[int, Field(ge=1, le=64)] = Field(
        default=2, description="Queries running at once per ingest process; more answer Busy (503)."
    )
    allowed_schemas: list[Annotated[str, Field(pattern=_IDENTIFIER)]] = Field(
        default_factory=lambda: ["public"], description="Schemas a query may name (its search_path)."
    )
    allow_catalogs: bool = Field(
        default=False, description="Let queries read pg_catalog and information_schema."
    )
    allowed_functions: list[Annotated[str, Field(pattern=_FUNCTION)]] = Field(
        default_factory=list,
        description="Functions to allow besides the default pure ones: `name` or `schema.name`.",
    )

    @model_validator(mode="before")
    @classmethod
    def _dsn_alone(cls, value: object) -> object:
        return {"dsn": value} if isinstance(value, str) else value


class SettingsError(ImagegenError):
    """Environment values that do not validate: each problem names its variable (never its
    value, which may be a password or a DSN with one)."""


class EnvSettings(BaseSettings):
    """Settings read from the environment whose errors name the variable to fix, not the field:
    `IMAGEGEN_BATCH_SIZE: Input should be a valid integer` rather than pydantic's `batch_size`."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = [(self._variable(error["loc"]), error["msg"]) for error in exc.errors()]
            raise self._error(problems) from None
        except pydantic_settings.SettingsError as exc:  # a JSON value that does not parse
            named = re.search(r'field "(\w+)"', str(exc))
            variable = self._variable((named.group(1),)) if named else "environment"
            raise self._error([(variable, f"not valid JSON ({exc.__cause__ or exc})")]) from None

    @staticmethod
    def _error(problems: list[tuple[str, str]]) -> SettingsError:
        if len(problems) == 1:
            return SettingsError(problems[0][1], field=problems[0][0])
        return SettingsError("; ".join(f"{variable}: {message}" for variable, message in problems))

    @classmethod
    def _variable(cls, loc: tuple[int | str, ...]) -> str:
        """The environment variable (and the place inside its JSON value) of an error location."""
        head, rest = str(loc[0]) if loc else "", ".".join(str(part) for part in loc[1:])
        field = cls.model_fields.get(head)
        alias = field.validation_alias if field else None
        if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
            head = alias.choices[0]
        elif field is not None:
            head = f"{cls.model_config.get('env_prefix', '')}{head}".upper()
        return f"{head} ({rest})" if rest else head


class Settings(EnvSettings):
    """Every knob of imagegen. Field `x` is set by `IMAGEGEN_X`."""

    model_config = SettingsConfigDict(env_prefix="IMAGEGEN_", extra="ignore")

    # --- connections -------------------------------------------------------------------------
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("IMAGEGEN_NATS_URL", "NATS_URL"),
        description="Comma-separated NATS server URLs.",
    )
    nats_user: str | None = None
    nats_password: str | None = None
    nats_password_file: Path | None = Field(
        default=None,
        description="A file holding the password (read at connect; wins over NATS_PASSWORD), as "
        "`imagegen nats credentials` writes them for compose.",
    )
    nats_token: str | None = None
    nats_creds_file: Path | None = None
    nats_tls_ca: Path | None = None
    declare_topology: bool = Field(
        default=True,
        description=(
            "Services create or update the streams, buckets and their durable consumers at start-up "
            "(needs JetStream admin rights). Set false where `imagegen nats setup` declares them as "
            "the admin identity: services then wait for their consumers."
        ),
    )
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        validation_alias=AliasChoices("IMAGEGEN_DATABASE_URL", "DATABASE_URL"),
        description="Postgres DSN of the job ledger.",
    )
    data_sources: dict[Annotated[str, Field(min_length=1, max_length=100)], DataSource] = Field(
        default_factory=dict,
        description="Named data sources of the db source, as JSON {name: dsn or DataSource}.",
    )

    # --- behaviour ---------------------------------------------------------------------------
    output_dir: Path = Path("output")
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH_SIZE)] = MAX_BATCH_SIZE
    ingest_concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    ingest_sources: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Sources this ingest process serves, comma-separated (default: every registered one).",
    )
    max_queued_batches_per_job: Annotated[int, Field(ge=0)] = Field(
        default=8,
        description="Fairness: a job keeps at most this many batches in the task queue (0: no cap).",
    )
    batch_max_bytes: Annotated[int, Field(ge=4096)] = Field(
        default=512 * 1024,
        description=(
            "Per-batch byte budget: a render task carries items up to this many bytes (never more "
            "than the NATS server's max_payload allows, and its result's bound must fit that too); "
            "ingest holds at most a few of them per job."
        ),
    )
    max_row_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=64 * 1024,
        description=(
            "A source row whose text, file-name and style cells (a database row: all its cells) "
            "take more bytes than this fails as its own item; the database source cuts such rows "
            "on the server."
        ),
    )
    max_inline_csv_bytes: Annotated[int, Field(ge=1)] = 4 * 1024 * 1024
    csv_allowed_dir: Path | None = None
    db_row_limit: Annotated[int, Field(ge=1)] = 10_000_000
    font_dirs: list[Path] = Field(default_factory=list)

    # --- consumers ---------------------------------------------------------------------------
    ack_wait_seconds: Annotated[float, Field(gt=0)] = 30.0
    max_deliver: Annotated[int, Field(ge=1)] = Field(
        default=5,
        description="Deliveries of a message whose handling keeps failing (retried with back-off) "
        "before it is recorded as failed items or a failed job and terminated.",
    )
    renderer_prefetch: Annotated[int, Field(ge=1, le=256)] = 4
    renderer_max_ack_pending: Annotated[int, Field(ge=1)] = 1024
    item_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    fault_injection: bool = Field(
        default=False,
        description="Test-only: items with the texts in services/renderer/worker.py hang or crash.",
    )
    progress_interval_seconds: Annotated[float, Field(ge=0)] = 0.5
    job_stall_seconds: Annotated[float, Field(gt=0)] = Field(
        default=3600.0,
        description="A job in an active state whose ledger row has not changed for this long (no "
        "state change, no batch counted) is failed with the reason; `jobs resume` continues it. An "
        "accepted job waiting while jobs of its source are being ingested is queued, not stalled.",
    )
    preview_concurrency: Annotated[int, Field(ge=1, le=16)] = Field(
        default=1,
        description="Previews a renderer replica renders at once, each in a render child of its own.",
    )
    preview_memory_mb: Annotated[int, Field(ge=16)] = Field(
        default=384,
        description="Memory a preview's render child may allocate beyond its started size (RLIMIT_AS).",
    )

    # --- streams -----------------------------------------------------------------------------
    results_max_age_hours: Annotated[float, Field(gt=0)] = 24.0 * 7
    events_max_age_hours: Annotated[float, Field(gt=0)] = 24.0 * 7
    tasks_max_bytes: Annotated[int, Field(ge=-1)] = 1024 * 1024 * 1024
    inputs_ttl_hours: Annotated[float, Field(gt=0)] = 24.0
    duplicate_window_seconds: Annotated[float, Field(gt=0)] = 600.0
    stream_replicas: Annotated[int, Field(ge=1, le=5)] = Field(
        default=1,
        description=(
            "Copies JetStream keeps of every stream (3 on a cluster of three servers survives the "
            "loss of one); a change is applied in place at the next declaration."
        ),
    )
    kv_replicas: Annotated[int, Field(ge=1, le=5)] | None = Field(
        default=None, description="Copies of every key-value bucket (default: stream_replicas)."
    )
    object_store_replicas: Annotated[int, Field(ge=1, le=5)] | None = Field(
        default=None, description="Copies of every Object Store bucket (default: stream_replicas)."
    )

    # --- operations --------------------------------------------------------------------------
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    metrics_port: int = Field(
        default=-1, description="Port of the Prometheus /metrics endpoint; -1 disables it."
    )
    output_store: Literal["directory", "object"] = Field(
        default="directory",
        description="Where renderers put images: output_dir, or the imagegen-images bucket.",
    )
    shutdown_grace_seconds: Annotated[float, Field(gt=0)] = 25.0
    instance: str | None = Field(
        default=None, description="Replica name shown in logs and results; defaults to host:pid."
    )

    @field_validator("nats_url")
    @classmethod
    def _nats_url_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name at least one server")
        return value

    @field_validator("ingest_sources", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @property
    def nats_servers(self) -> list[str]:
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
