"""Path parameters of the Meilisearch routes, described for the OpenAPI page."""

from typing import Annotated

from fastapi import Path

IndexUid = Annotated[str, Path(max_length=400, description="The index: `articles`.", examples=["articles"])]
DocumentId = Annotated[
    str, Path(max_length=200, description="A document's id: its slug.", examples=["opec-agrees-modest-output-increase"])
]
SettingName = Annotated[str, Path(max_length=100, description="A setting, kebab-case.", examples=["synonyms"])]
TaskUid = Annotated[str, Path(max_length=20, description="A task's uid.", examples=["1"])]
