"""The one settings object: environment variables prefixed SEARCH_, defaults here."""

from __future__ import annotations

from pathlib import Path

from pydantic import AwareDatetime, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from search_service.config import DEFAULT_CONFIG_PATH


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEARCH_", extra="ignore")

    index_dir: Path = Field(Path("data/index"), description="Where index generations live.")
    config_path: Path = Field(DEFAULT_CONFIG_PATH, description="The index_config schema file.")
    host: str = Field("127.0.0.1", description="Bind address; loopback unless told otherwise.")
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    admin_key: str | None = Field(None, description="Bearer key for admin endpoints; unset disables them.")
    public_key: str | None = Field(
        None, description="Search-only key of the Meilisearch API (/meili); unset: search needs no key."
    )
    meili_prefix: str = Field(
        "/meili", pattern=r"^(/[A-Za-z0-9_.-]+)+$", description="Where the Meilisearch API is mounted."
    )
    meili_tasks_db: Path | None = Field(
        None,
        description="The Meilisearch API's task table (SQLite); default <index dir>-tasks.sqlite3 beside the index.",
    )
    cors_origins: list[str] = Field(default_factory=list, description="Allowed CORS origins; empty is off.")
    writer_heap_mb: int = Field(256, ge=16, le=4096, description="Tantivy writer memory budget.")
    writer_threads: int = Field(2, ge=1, le=16, description="Tantivy indexing threads.")
    reload_interval_s: float = Field(0.25, gt=0, description="How often readers look for a new commit.")
    max_query_chars: int = Field(1000, ge=1)
    max_query_terms: int = Field(64, ge=1, description="Words and phrases used from one query; more are ignored.")
    search_budget_ms: float = Field(
        250, gt=0, description="A search still running after this long skips snippets and facets (degraded)."
    )
    result_cache_size: int = Field(
        1024,
        ge=0,
        description="Search responses, and facet counts shared by a query's pages and sort orders, kept per "
        "worker until the index changes; 0 turns both off.",
    )
    access_log: bool = Field(True, description="One JSON line per request on stdout.")
    log_level: str = Field("info")
    max_filter_values: int = Field(50, ge=1, description="Most values one filter parameter may repeat.")
    max_page_depth: int = Field(10_000, ge=1, description="Deepest hit a client may page to.")
    freshness_now: AwareDatetime | None = Field(
        None, description="Pin the 'now' of freshness ranking (ISO with offset; replays, tests); unset: the clock."
    )
    max_synonym_groups: int = Field(1000, ge=0, description="Most groups in the synonym set.")
    max_synonym_words: int = Field(20, ge=1, description="Most words (or phrases) in one synonym group.")
    max_rules: int = Field(1000, ge=0, description="Most curation rules in the rule set.")
    max_rule_slugs: int = Field(50, ge=1, description="Most pins and hides in one curation rule.")
    analytics: bool = Field(True, description="Record searches and opened results (nothing about the reader).")
    analytics_db: Path | None = Field(
        None, description="The analytics SQLite file; default <index dir>-analytics.sqlite3 beside the index directory."
    )
    analytics_retention_days: int = Field(90, ge=1, le=3660, description="Days of analytics kept (as daily roll-ups).")
    analytics_flush_s: float = Field(
        0.5, gt=0, le=1, description="How often each worker writes its buffered analytics (a kill -9 loses this much)."
    )
    analytics_suggest_min_count: int = Field(
        5, ge=1, description="Searches with results a past query needs before /suggest offers it to anyone."
    )
    analytics_suggest_refresh_s: float = Field(60, gt=0, description="How often /suggest reloads popular queries.")
    max_write_mb: float = Field(32, gt=0, description="Largest request body the write API reads (413 past it).")
    max_write_records: int = Field(10_000, ge=1, description="Most articles (or slugs) in one write request.")
    write_lock_wait_s: float = Field(
        2.0, ge=0, description="How long a write waits for another writer before it is journaled (202) instead."
    )
    reindex_lock_wait_s: float = Field(
        600, ge=0, description="How long a CLI reindex or delete waits for another writer before exit code 4."
    )
    write_min_free_mb: float = Field(
        64, ge=0, description="Writes over HTTP are refused (507) while the index's file system has less free."
    )
    journal_poll_s: float = Field(0.5, gt=0, description="How often a server applies journaled writes it can.")
