"""The database source's request: `imagegen.submit.db`."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, field

from shared.contract.submit import SubmitBase

QueryParam = str | int | float | bool | None


class SubmitDb(SubmitBase, tag="db", kw_only=True):
    """Render one image per row of a read-only query on a named data source.

    `data_source` names a source the server configures (`IMAGEGEN_DATA_SOURCES`); a request
    never carries a connection string. `$1, $2...` in the query take `params`.
    """

    data_source: Annotated[
        str, Meta(min_length=1, max_length=100, description="a data source configured on the server")
    ]
    query: Annotated[str, Meta(min_length=1, max_length=100_000, description="one read-only SELECT")]
    params: Annotated[
        list[QueryParam], Meta(max_length=100, description="values of $1, $2, ... in the query")
    ] = field(default_factory=list)
