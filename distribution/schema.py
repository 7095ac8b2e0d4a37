"""Every module that defines one of distribution's tables, imported so its MetaData is whole."""

from distribution import (  # noqa: F401  (imported for their tables)
    deliveries,
    documents,
    events,
    preferences,
    recipients,
    template_store,
    waves,
    webhook_models,
)
from distribution.models import Base

metadata = Base.metadata
