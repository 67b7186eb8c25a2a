"""Admin routes for the editorial state: the synonym set and the curation rule set.

    GET  /admin/synonyms            the live set and its version
    PUT  /admin/synonyms            replace it (validated whole: a 422 changes nothing)
    POST /admin/synonyms/rollback   make the previous set live again (as a new version)
    GET|PUT /admin/rules, POST /admin/rules/rollback   the same for curation rules

All need the admin key. The worker that takes a write serves the new set from its next request;
the others see it within SEARCH_RELOAD_INTERVAL_S.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, Field

from search_service.config import IndexConfig
from search_service.editorial.rules import RuleLimits, RuleSetIn
from search_service.editorial.store import replace_rules, replace_synonyms, slug_checker
from search_service.editorial.synonyms import SynonymLimits, SynonymSetIn
from search_service.errors import IndexNotReadyError
from search_service.http.common import ERRORS, JSON, require_admin
from search_service.settings import Settings


class SynonymsOut(BaseModel):
    version: int = Field(description="Grows with every change (rollbacks too); 0 before the first.")
    updated_at: str | None
    synonyms: list[dict[str, Any]]
    warnings: list[str] = Field(default_factory=list)


class RulesOut(BaseModel):
    version: int = Field(description="Grows with every change (rollbacks too); 0 before the first.")
    updated_at: str | None
    rules: list[dict[str, Any]]
    warnings: list[str] = Field(default_factory=list, description="Pins and hides naming no article.")


def synonym_limits(settings: Settings) -> SynonymLimits:
    return SynonymLimits(settings.max_synonym_groups, settings.max_synonym_words)


def rule_limits(settings: Settings) -> RuleLimits:
    return RuleLimits(settings.max_rules, settings.max_rule_slugs)


def add_editorial_routes(app: FastAPI, settings: Settings, config: IndexConfig) -> None:

    errors = {**ERRORS, 401: ERRORS[404], 409: ERRORS[404]}

    def admin(request: Request) -> None:
        # A dependency runs before the body is validated: without the key, nothing about the body is said.
        require_admin(request, settings)

    def controls(request: Request) -> Any:
        return app.state.engine.editorial

    admin_only = {"responses": errors, "dependencies": [Depends(admin)]}

    @app.get("/admin/synonyms", response_model=SynonymsOut, **admin_only, summary="The synonym set (admin)")
    def get_synonyms(request: Request) -> JSON:
        return JSON(controls(request).store.read("synonyms").as_dict())

    @app.put("/admin/synonyms", response_model=SynonymsOut, **admin_only, summary="Replace the synonyms (admin)")
    def put_synonyms(request: Request, body: SynonymSetIn) -> JSON:
        editorial = controls(request)
        result = replace_synonyms(editorial.store, body, synonym_limits(settings), editorial.tokenize)
        editorial.synonyms.refresh()
        return JSON(result)

    @app.post("/admin/synonyms/rollback", response_model=SynonymsOut, **admin_only, summary="Previous synonyms (admin)")
    def rollback_synonyms(request: Request) -> JSON:
        editorial = controls(request)
        result = editorial.store.rollback("synonyms").as_dict()
        editorial.synonyms.refresh()
        return JSON(result)

    @app.get("/admin/rules", response_model=RulesOut, **admin_only, summary="The curation rules (admin)")
    def get_rules(request: Request) -> JSON:
        return JSON(controls(request).store.read("rules").as_dict())

    @app.put("/admin/rules", response_model=RulesOut, **admin_only, summary="Replace the curation rules (admin)")
    def put_rules(request: Request, body: RuleSetIn) -> JSON:
        editorial = controls(request)
        engine = app.state.engine
        try:
            exists = slug_checker(engine.reader.searcher(), engine.schema, config.key_field.name)
        except IndexNotReadyError:
            exists = None
        result = replace_rules(editorial.store, body, rule_limits(settings), config.filters, exists)
        editorial.rules.refresh()
        return JSON(result)

    @app.post("/admin/rules/rollback", response_model=RulesOut, **admin_only, summary="Previous rules (admin)")
    def rollback_rules(request: Request) -> JSON:
        editorial = controls(request)
        result = editorial.store.rollback("rules").as_dict()
        editorial.rules.refresh()
        return JSON(result)
