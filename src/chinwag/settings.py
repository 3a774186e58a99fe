"""One Settings object, built once in ``main()`` / ``create_app`` and passed down.

Nothing else in chinwag reads the environment. Every duration is a setting so tests
can shrink it."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chinwag.ai.catalog import default_model_for, parse_model_max_tokens, parse_routes
from chinwag.ai.pricing import PriceTable
from chinwag.files.s3 import S3Location

S3_MAX_PARTS = 10_000


class SettingsError(Exception):
    """A bad setting: the message is one line naming the variable."""


#: ``BROKER_URL`` for a Redis Cluster: the seed nodes (the broker parses it again).
_CLUSTER_URL = re.compile(r"redis\+cluster://([^@/]+@)?[^,:/@]+:\d{1,5}(,[^,:/@]+:\d{1,5})*/?")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Storage and broker
    data_dir: Path = Path("data")
    database_url: str | None = None
    broker_url: str = "memory://"
    redis_key_prefix: str = "chinwag:"

    # Auth
    jwt_secret: Annotated[str, Field(min_length=32)] | None = None
    access_token_expire_seconds: int = Field(3600, ge=60)
    ws_token_expire_seconds: int = Field(86400, ge=1)
    admin_username: str | None = None
    admin_password: str | None = None
    login_max_failures: int = Field(5, ge=1)
    login_lockout_seconds: float = Field(60.0, gt=0)
    register_rate_limit_requests: int = Field(10, ge=1)
    register_rate_limit_window: float = Field(3600.0, gt=0)
    password_hash_workers: int = Field(2, ge=1)

    # HTTP
    http_rate_limit_requests: int = Field(600, ge=1)
    http_rate_limit_window: float = Field(60.0, gt=0)
    forwarded_allow_ips: Annotated[list[str], NoDecode] = []

    # WebSocket
    websocket_max_connections: int = Field(1000, ge=1)
    websocket_max_connections_per_user: int = Field(10, ge=1)
    websocket_heartbeat_interval: float = Field(30.0, gt=0)
    websocket_cleanup_interval: float = Field(300.0, gt=0)
    websocket_handshake_timeout: float = Field(10.0, gt=0)
    websocket_outbox_size: int = Field(1024, ge=8)
    ws_max_message_size: int = Field(2 * 1024 * 1024, ge=1024)
    ws_allowed_origins: Annotated[list[str], NoDecode] = []
    ws_rate_limit_requests: int = Field(100, ge=1)
    ws_rate_limit_window: float = Field(60.0, gt=0)
    typing_timeout: float = Field(10.0, gt=0)
    presence_ttl: float = Field(30.0, gt=0)
    drain_timeout: float = Field(30.0, gt=0)

    # Files
    max_file_size: int = Field(50 * 1024 * 1024, ge=1)
    max_chunk_size: int = Field(1024 * 1024, ge=1)
    virus_scan_enabled: bool = False
    upload_dir: Path = Path("uploads")
    temp_dir: Path = Path("uploads/temp")
    upload_timeout: float = Field(3600.0, gt=0)
    max_uploads_per_user: int = Field(3, ge=1)
    max_temp_bytes_per_user: int = Field(200 * 1024 * 1024, ge=1)
    upload_finalize_lease: float = Field(600.0, gt=0)
    file_storage_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_min_part_size: int = Field(5 * 1024 * 1024, ge=1)
    max_rooms_per_user: int = Field(100, ge=1)  # rooms a (non-admin) user may own at once
    clamd_socket: str | None = None
    clamd_host: str | None = None
    clamd_port: int = Field(3310, ge=1, le=65535)
    clamd_timeout: float = Field(60.0, gt=0)
    clamd_max_concurrent: int = Field(4, ge=1)

    # AI
    ai_provider: Literal["offline", "openai", "anthropic"] = "offline"
    default_model: str | None = None
    ai_models: Annotated[list[str], NoDecode] = []
    ai_timeout: float = Field(60.0, gt=0)
    ai_prices: str | None = None
    ai_context_tokens: int = Field(4000, ge=16)
    ai_max_retries: int = Field(2, ge=0)
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    offline_token_delay: float = Field(0.0, ge=0)
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    ai_routes: str | None = None
    ai_fallback_models: Annotated[list[str], NoDecode] = []
    ai_max_tokens: int = Field(4096, ge=1, le=1_000_000)
    ai_model_max_tokens: str | None = None
    ai_max_concurrent_per_user: int = Field(3, ge=1)
    ai_budget_tokens_per_day: int | None = Field(None, ge=0)
    ai_budget_usd_per_month: float | None = Field(None, ge=0, allow_inf_nan=False)

    # Logging
    debug: bool = False
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["json", "console"] = "console"
    metrics_enabled: bool = True

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @field_validator(
        "ws_allowed_origins",
        "ai_models",
        "ai_fallback_models",
        "forwarded_allow_ips",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [item.strip().rstrip("/") for item in v.split(",") if item.strip()]
        return v

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, v: list[str]) -> list[str]:
        for item in v:
            if item != "*":
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"'{item}' is not an IP address, a network or *") from None
        return v

    @field_validator("ai_prices")
    @classmethod
    def _prices_parse(cls, v: str | None) -> str | None:
        PriceTable.from_json(v)  # raises ValueError naming the model and field
        return v

    @field_validator("ai_routes")
    @classmethod
    def _routes_parse(cls, v: str | None) -> str | None:
        parse_routes(v)  # raises ValueError naming the entry
        return v

    @field_validator("ai_model_max_tokens")
    @classmethod
    def _max_tokens_parse(cls, v: str | None) -> str | None:
        parse_model_max_tokens(v)
        return v

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, v: str) -> str:
        if v.startswith("redis+cluster://"):
            if not _CLUSTER_URL.fullmatch(v):
                raise ValueError("must be redis+cluster://[user:password@]host:port[,host:port...]")
            return v
        if not (v == "memory://" or v.startswith(("redis://", "rediss://", "unix://"))):
            raise ValueError(
                "must be memory://, redis://host:port[/db] or "
                "redis+cluster://host:port[,host:port...]"
            )
        return v

    @field_validator("file_storage_url")
    @classmethod
    def _storage_scheme(cls, v: str | None) -> str | None:
        if v is not None:
            S3Location.parse(v)  # raises ValueError naming the form
        return v

    @field_validator("database_url")
    @classmethod
    def _db_scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.max_chunk_size > self.max_file_size:
            raise ValueError("MAX_CHUNK_SIZE must not exceed MAX_FILE_SIZE")
        # A chunk travels base64-encoded (4/3 of its size) inside one frame.
        needed = 4 * -(-self.max_chunk_size // 3) + 1024
        if needed > self.ws_max_message_size:
            raise ValueError(
                f"MAX_CHUNK_SIZE={self.max_chunk_size} cannot work with WS_MAX_MESSAGE_SIZE="
                f"{self.ws_max_message_size}: a chunk travels base64-encoded in one frame, "
                f"which needs WS_MAX_MESSAGE_SIZE >= {needed} (or MAX_CHUNK_SIZE <= "
                f"{(self.ws_max_message_size - 1024) // 4 * 3})"
            )
        if self.file_storage_url is not None:
            # S3 refuses a multipart upload whose parts (but the last) are smaller.
            if self.max_chunk_size < min(self.s3_min_part_size, self.max_file_size):
                raise ValueError(
                    f"MAX_CHUNK_SIZE must be at least S3_MIN_PART_SIZE "
                    f"({self.s3_min_part_size}) with FILE_STORAGE_URL=s3://…"
                )
            if -(-self.max_file_size // self.max_chunk_size) > S3_MAX_PARTS:
                raise ValueError(
                    f"MAX_FILE_SIZE / MAX_CHUNK_SIZE must not exceed "
                    f"{S3_MAX_PARTS} (S3's most parts per upload)"
                )
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'chinwag.db'}"

    @property
    def effective_default_model(self) -> str:
        if self.default_model:
            return self.default_model
        return default_model_for(self.ai_provider, tuple(self.ai_models) or None)

    @property
    def uses_redis(self) -> bool:
        return self.broker_url != "memory://"

    @property
    def uses_redis_cluster(self) -> bool:
        return self.broker_url.startswith("redis+cluster://")


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and ``.env``); raise SettingsError with one line per problem."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if err["loc"]:
                problems.append(f"{str(err['loc'][0]).upper()}: {err['msg']}")
            else:  # a combination of settings: the message names them
                problems.append(err["msg"].removeprefix("Value error, "))
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
