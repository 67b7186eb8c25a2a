"""The reader-facing routes: search, one article, related articles, facet values, completions."""

from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path, Query, Request

from search_service.analytics.recorder import ANALYTICS_HEADER
from search_service.config import IndexConfig
from search_service.errors import InvalidParameterError, NotFoundError
from search_service.http.common import ERRORS, JSON, fast_get, parse_when
from search_service.http.models import ArticleOut, FacetValuesOut, RelatedOut, SearchOut, SuggestOut
from search_service.search.engine import SearchRequest
from search_service.settings import Settings


def add_search_routes(app: FastAPI, settings: Settings, config: IndexConfig) -> None:
    facet_names = list(config.facets)
    histogram = config.histogram_field.name if config.histogram_field else None
    all_facets = [*facet_names, *([histogram] if histogram else [])]
    filter_fields = config.filters  # query parameter -> field
    get = fast_get(app)

    Q = Annotated[
        str,
        Query(
            max_length=settings.max_query_chars,
            description='Search-box text: words (all must match), "phrases", -exclude, a OR b, field:word.',
            examples=["oil prices", '"interest rates" -japan'],
        ),
    ]
    Topic = Annotated[list[str], Query(description="Topic filter; repeat to OR values.", examples=[["crude"]])]
    Entity = Annotated[list[str], Query(description="Entity filter; repeat to OR values.", examples=[["USA"]])]
    Lang = Annotated[list[str], Query(description="Language filter (BCP 47 code).", examples=[["en"]])]
    After = Annotated[
        str | None,
        Query(description="Published at or after (ISO date or datetime; UTC if no offset).", examples=["1987-03-01"]),
    ]
    Before = Annotated[
        str | None,
        Query(description="Published before (exclusive; ISO date or datetime).", examples=["1987-04-01"]),
    ]

    Exhaustive = Annotated[
        bool,
        Query(
            description="Count every match exactly, however many (editors' reports). By default facet counts "
            f"past {config.counting.exact_up_to:,} matches are estimated from a sample; the response's "
            "`exhaustive` says which counts are exact.",
            examples=[True],
        ),
    ]

    def build_request(
        request: Request,
        q: str,
        topic: list[str],
        entity: list[str],
        lang: list[str],
        published_after: str | None,
        published_before: str | None,
        **rest: Any,
    ) -> SearchRequest:
        given = {"topic": topic, "entity": entity, "lang": lang}
        filters: dict[str, tuple[str, ...]] = {}
        for param, f in filter_fields.items():
            values = given.get(param)
            if values is None:
                values = request.query_params.getlist(param)
            if len(values) > settings.max_filter_values:
                raise InvalidParameterError(param, f"at most {settings.max_filter_values} values")
            if values:
                filters[f.name] = tuple(values)
        return SearchRequest(
            q=q,
            filters=filters,
            published_after=parse_when("published_after", published_after),
            published_before=parse_when("published_before", published_before),
            **rest,
        )

    @get("/search", response_model=SearchOut, responses=ERRORS, summary="Ranked search with facets")
    async def search(
        request: Request,
        q: Q = "",
        topic: Topic = [],  # noqa: B006 - FastAPI reads the default, never mutates it
        entity: Entity = [],  # noqa: B006
        lang: Lang = [],  # noqa: B006
        published_after: After = None,
        published_before: Before = None,
        sort: Annotated[
            Literal["relevance", "newest", "oldest"] | None,
            Query(description="Default: relevance with q, newest without.", examples=["newest"]),
        ] = None,
        page: Annotated[int, Query(ge=1, description="Page number, from 1.", examples=[1])] = 1,
        per_page: Annotated[int, Query(ge=1, le=100, description="Hits per page.", examples=[10])] = 10,
        facets: Annotated[
            str,
            Query(description=f"Comma-separated subset of {','.join(all_facets)}.", examples=[",".join(all_facets)]),
        ] = ",".join(all_facets),
        facet_size: Annotated[int, Query(ge=1, le=100, description="Values per facet.", examples=[10])] = 10,
        date_interval: Annotated[
            Literal["year", "month", "week", "day", "auto"],
            Query(
                description="Date histogram bucket size (UTC); auto: the finest with at most 60 buckets "
                "(the interval used is in the response's date_interval).",
                examples=["month"],
            ),
        ] = "month",
        prefix: Annotated[
            bool, Query(description="Also match the last word as a prefix (search-as-you-type).", examples=[True])
        ] = False,
        typos: Annotated[
            bool, Query(description="Tolerate typos (one edit, two in long words).", examples=[True])
        ] = True,
        freshness: Annotated[
            Literal["on", "off"],
            Query(description="off: rank by relevance alone for this request (A/B comparisons).", examples=["off"]),
        ] = "on",
        semantic: Annotated[
            bool,
            Query(
                description="Fuse the ranking with the nearest articles by meaning (when the index has "
                "[semantic] enabled; `off` ranks by the words alone). The response's `semantic` says if it was used.",
                examples=[True],
            ),
        ] = True,
        exhaustive: Exhaustive = False,
    ) -> JSON:
        if page * per_page > settings.max_page_depth:
            raise InvalidParameterError(
                "page", f"page * per_page may not exceed {settings.max_page_depth:,}; narrow the query instead"
            )
        wanted = tuple(dict.fromkeys(f.strip() for f in facets.split(",") if f.strip()))
        unknown = [f for f in wanted if f not in all_facets]
        if unknown:
            raise InvalidParameterError("facets", f"unknown facet {unknown[0]!r}; allowed: {', '.join(all_facets)}")
        search_request = build_request(
            request, q, topic, entity, lang, published_after, published_before,
            sort=sort, page=page, per_page=per_page, facets=wanted, facet_size=facet_size,
            date_interval=date_interval, prefix=prefix, typos=typos, freshness=freshness == "on",
            semantic=semantic, exhaustive=exhaustive,
        )  # fmt: skip
        result = app.state.engine.search(search_request)
        return JSON(app.state.analytics.record(search_request, result, request.headers.get(ANALYTICS_HEADER)))

    @get("/articles/{slug}", response_model=ArticleOut, responses=ERRORS, summary="One stored article by slug")
    async def article(slug: Annotated[str, Path(max_length=200, examples=["reuters-1-bahia-cocoa-review"])]) -> JSON:
        found = app.state.engine.article(slug)
        if found is None:
            raise NotFoundError(f"no article with slug {slug!r}")
        return JSON(found)

    @get("/articles/{slug}/related", response_model=RelatedOut, responses=ERRORS, summary="Similar articles")
    async def related(
        slug: Annotated[str, Path(max_length=200, examples=["reuters-1-bahia-cocoa-review"])],
        limit: Annotated[int, Query(ge=1, le=50, description="How many similar articles.", examples=[5])] = 5,
    ) -> JSON:
        hits = app.state.engine.related(slug, limit)
        if hits is None:
            raise NotFoundError(f"no article with slug {slug!r}")
        return JSON({"slug": slug, "related": hits})

    @get(
        "/facets/{facet}",
        response_model=FacetValuesOut,
        responses=ERRORS,
        summary="Facet values with counts, for browsing and typeahead",
    )
    async def facet_values(
        request: Request,
        facet: Annotated[str, Path(description=f"One of {', '.join(facet_names)}.", examples=[facet_names[0]])],
        prefix: Annotated[
            str, Query(max_length=200, description="Case-insensitive prefix of the value.", examples=["ja"])
        ] = "",
        size: Annotated[int, Query(ge=1, le=100, description="How many values.", examples=[10])] = 10,
        q: Q = "",
        topic: Topic = [],  # noqa: B006
        entity: Entity = [],  # noqa: B006
        lang: Lang = [],  # noqa: B006
        published_after: After = None,
        published_before: Before = None,
        exhaustive: Exhaustive = False,
    ) -> JSON:
        if facet not in facet_names:
            raise NotFoundError(f"unknown facet {facet!r}; facets are {', '.join(facet_names)}")
        search_request = build_request(
            request, q, topic, entity, lang, published_after, published_before, exhaustive=exhaustive
        )
        return JSON(app.state.engine.facet_values(facet, search_request, prefix.strip(), size))

    @get("/suggest", response_model=SuggestOut, responses=ERRORS, summary="Search-box completions")
    async def suggest(
        q: Annotated[str, Query(max_length=200, description="What has been typed so far.", examples=["opec"])] = "",
        limit: Annotated[int, Query(ge=1, le=10, description="How many completions.", examples=[10])] = 10,
    ) -> JSON:
        return JSON({"q": q, "suggestions": app.state.suggester.suggest(q, limit)})
