"""HubSpot's API limits, each defined once: the connector's modules read them from here.

The call-rate limits (requests per ten seconds, searches per second, the daily allocation)
are settings and answer headers, not constants: see client.py and budget.py.
"""

from __future__ import annotations

BATCH_MAX = 100              # batch read, create, update, upsert: inputs per call
SEARCH_PAGE = 200            # search: results per page (the API refuses more)
SEARCH_CAP = 10_000          # search: results one query can page through
SEARCH_FILTERS = 18          # search: filters across all groups (5 groups x 6 at most)
SEARCH_GROUPS = 5
LIST_PAGE = 100              # object list pages (archived contacts, the association scan)
OWNERS_PAGE = 500            # owners list pages
EVENTS_PAGE = 1_000          # web events pages
# v4 batch association read: ids per call (1,000 since 2025-02-10, HubSpot developer changelog
# "Batch Read Limit for HubSpot Associations API")
ASSOCIATION_BATCH = 1_000
LIST_MEMBERSHIP_MAX = 1_000  # list membership add/remove: record ids per call
