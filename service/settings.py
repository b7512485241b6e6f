"""Runtime configuration, read once from `AUTOGRAD_*` environment variables."""

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Settings(BaseSettings):
    """Every knob of the service; each field is `AUTOGRAD_<FIELD>` in the environment.

    Limits exist so that a hostile or mistaken request is refused with a 4xx before it can
    allocate memory or burn CPU; raise them deliberately, not by default.
    """

    model_config = SettingsConfigDict(env_prefix="AUTOGRAD_", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", description="Interface `serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port `serve` listens on.")
    workers: int = Field(1, ge=1, description="Uvicorn worker processes for `serve`.")
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        "info",
        description="Log level of uvicorn and the service; `info` and below write one access "
        "line per request.",
    )
    log_format: Literal["json", "text"] = Field(
        "json",
        description="`serve`'s log lines: one JSON object each (with the request id), or "
        "plain text.",
    )

    max_body_bytes: int = Field(
        16 * MiB, ge=0, description="Largest request body accepted; larger ones get 413."
    )
    max_nodes: int = Field(
        10_000, ge=1, description="Most nodes (ops) one graph may have after parsing."
    )
    max_expr_chars: int = Field(
        65_536, ge=1, description="Longest `expr` program text accepted, in characters."
    )
    max_ndim: int = Field(32, ge=0, le=64, description="Most dimensions a tensor may have.")
    max_tensor_elements: int = Field(
        10_000_000, ge=1, description="Most elements in any one tensor, input or intermediate."
    )
    max_total_elements: int = Field(
        50_000_000,
        ge=1,
        description="Most elements summed over all tensors of one request (inputs, "
        "intermediates, gradients); bounds the memory one request can hold.",
    )
    max_flops: int = Field(
        10_000_000_000, ge=1, description="Most estimated floating-point operations per request."
    )
    max_request_bytes: int = Field(
        1 << 30,
        ge=1,
        description="Most bytes one request's computation may hold at its peak, as estimated "
        "before it runs (every tensor and gradient kept, plus the largest op's temporaries: "
        "windows, im2col columns, index arrays).",
    )
    max_request_seconds: float = Field(
        10.0,
        gt=0,
        description="Most seconds of computation one request may take (a program, its "
        "derivatives, a session call, every batch of a train call together, drawing an SVG); "
        "past it the work stops between two steps and the answer is 503 deadline-exceeded, "
        "leaving any session as it was. Replaying a session's journal runs apart, under "
        "twice AUTOGRAD_JOURNAL_MAX_REPLAY_SECONDS.",
    )
    max_svg_nodes: int = Field(
        5_000,
        ge=1,
        description="Most nodes Graphviz may lay out to draw a DAG as SVG, counting one per "
        "rank each long edge crosses (Graphviz lays those out as nodes too); a bigger "
        "drawing is refused (422) before Graphviz runs. JSON's `dag.dot` has no such limit.",
    )
    svg_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Longest Graphviz may take to draw one SVG; it is then stopped and the "
        "request refused (422).",
    )
    svg_memory_bytes: int = Field(
        512 * MiB,
        ge=128 * MiB,
        description="Address space Graphviz may use to draw one SVG (RLIMIT_AS); past it "
        "the drawing fails and the request is refused (422).",
    )
    heavy_flops: int = Field(
        100_000_000,
        ge=0,
        description="A computation estimated at more floating-point operations than this is "
        "heavy: at most AUTOGRAD_HEAVY_SLOTS of them run at once on the server (all workers "
        "sharing AUTOGRAD_DATA_DIR), the others wait for a slot (until their time limit; then "
        "503 server-busy), so that expensive requests cannot crowd out cheap ones, which "
        "never wait.",
    )
    heavy_slots: int = Field(
        1,
        ge=0,
        description="Heavy computations running at once on the server; about half its cores "
        "leaves the rest to cheap requests. 0: no limit.",
    )
    program_cache_size: int = Field(
        256, ge=0, description="Parsed programs kept, keyed by their text; 0 disables the cache."
    )

    data_dir: Path = Field(
        Path("data"), description="Directory for persistent state (the session store)."
    )
    store: str = Field(
        "sqlite",
        description="Session store: `sqlite` (a file in data_dir, shared by the workers), "
        "`memory` (one worker only, lost on restart) or a `redis://host:port/db` URL "
        "(several replicas sharing sessions).",
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="SQLite fsync policy. NORMAL (with WAL): an acknowledged step survives a "
        "crash of the server process but not a power failure; FULL fsyncs every step and "
        "survives both, at a few ms per step.",
    )
    session_ttl_seconds: float = Field(
        3600.0, gt=0, description="A session unused for this long is deleted."
    )
    max_sessions: int = Field(1000, ge=1, description="Most live sessions kept at once.")
    max_session_bytes: int = Field(
        256 * MiB,
        ge=1,
        description="Most bytes one session may store (arrays, program, optimizer config).",
    )
    max_store_bytes: int = Field(
        2048 * MiB, ge=1, description="Most bytes all live sessions together may store."
    )
    max_client_sessions: int = Field(
        100,
        ge=0,
        description="Most live sessions one client may hold: an API key (its own cap in the "
        "keys file replaces this), or a client address when keys are off. Below "
        "AUTOGRAD_MAX_SESSIONS, so that one client cannot fill the store; 0: no cap of its own.",
    )
    max_client_bytes: int = Field(
        512 * MiB,
        ge=0,
        description="Most bytes one client's live sessions may store together (per API key or "
        "client address, as AUTOGRAD_MAX_CLIENT_SESSIONS); 0: no cap of its own.",
    )
    api_keys_file: Path | None = Field(
        None,
        description="A JSON file of hashed API keys and their quotas (`autograd-service keys "
        "add` writes it; edits apply within a second). Set, every /v1 call needs a key: "
        "`X-API-Key: <key>`, or `Authorization: Bearer <key>` on calls that take no session "
        "token. Unset, the service is open (local use) and the caps and rate apply per client "
        "address.",
    )
    rate_limit: float = Field(
        0.0,
        ge=0,
        description="Requests per second each client (API key or address) may make to /v1, "
        "in each worker process (a token bucket); more are 429 with Retry-After. 0: no limit "
        "(nginx's limit_req guards the deployment's edge). A key's own rate replaces it.",
    )
    rate_burst: int = Field(
        0,
        ge=0,
        description="Requests a client may make at once above AUTOGRAD_RATE_LIMIT (the "
        "bucket's size); 0: one second's worth of the rate.",
    )
    journal_max_entries: int = Field(
        1024,
        ge=0,
        description="Most training calls stored as their request (a journal entry, replayed "
        "when the session is read) between two stores of the whole state. The whole state is "
        "also stored once the entries outweigh it or their replay would exceed "
        "AUTOGRAD_JOURNAL_MAX_REPLAY_SECONDS. 0 stores the whole state every call.",
    )
    journal_max_replay_seconds: float = Field(
        10.0,
        ge=0,
        description="Most compute time replaying a session's journal may take (a restarted "
        "worker does it before its first answer on that session); more stores the whole "
        "state instead. Larger makes those stores rarer for big models.",
    )
    session_cache_bytes: int = Field(
        512 * MiB,
        ge=0,
        description="Bytes of sessions each worker keeps in memory between calls, so that a "
        "step neither reads nor replays what this worker computed last.",
    )
    idempotency_ttl_seconds: float = Field(
        86400.0,
        gt=0,
        description="How long the answer to a request with an Idempotency-Key is kept for "
        "replay to its retries.",
    )

    @field_validator("store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if value in ("sqlite", "memory") or value.startswith(REDIS_SCHEMES):
            return value
        raise ValueError("expected 'sqlite', 'memory' or a redis:// URL")


def _default_text(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= MiB and not value % MiB:
        return f"`{value}` ({value // MiB} MiB)"
    return f"`{value}`"


def environment_table() -> str:
    """Every setting as a Markdown table row: variable, default, description. The README's
    deployment section holds this text (a test keeps the two equal)."""
    rows = ["| Variable | Default | Description |", "| --- | --- | --- |"]
    prefix = Settings.model_config["env_prefix"]
    for name, field in Settings.model_fields.items():
        description = " ".join((field.description or "").split()).replace("|", "\\|")
        default = _default_text(field.default)
        rows.append(f"| `{prefix}{name.upper()}` | {default} | {description} |")
    return "\n".join(rows) + "\n"
