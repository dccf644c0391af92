"""Read-only SQL queries on named Postgres data sources, streamed through a server-side cursor."""

from shared.sources.base import SourceSpec
from shared.sources.db.request import SubmitDb

SOURCE = SourceSpec(
    name="db",
    request=SubmitDb,
    summary="one image per row of a read-only query on a named Postgres data source",
    implementation="shared.sources.db.source:DbSource",
)

__all__ = ["SOURCE", "SubmitDb"]
