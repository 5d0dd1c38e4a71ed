"""Salesforce's API limits, each defined once: the connector's modules read them from here.

The daily allocation is not a constant: the org reports it (``Sforce-Limit-Info``, budget.py).
"""

from __future__ import annotations

from datetime import timedelta

COLLECTION_MAX = 200              # sObject Collections: records per call
QUERY_PAGE = 2_000                # a query page's rows at most
COMPOSITE_MAX_SUBREQUESTS = 25    # Composite: subrequests per call
COMPOSITE_MAX_QUERIES = 5         # Composite: query or collection subrequests per call
LOOKUP_CHUNK = 200                # values per IN (...) of one lookup query (the URL stays short)
#: A GET's request line and headers must stay under 16,384 bytes; a margin for the headers.
#: A Composite subrequest's url is held to it too (the harsher case: wide.py).
MAX_GET_URL_BYTES = 14_000
UPDATED_WINDOW = timedelta(days=30)     # how far back /updated answers
DELETE_LOG_WINDOW = timedelta(days=15)  # how long the recycle bin / delete log keeps deletes
