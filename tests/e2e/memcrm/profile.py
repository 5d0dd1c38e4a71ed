"""Step 2 of docs/adding-a-connector.md: what the pipeline needs to know about MemCRM."""

from __future__ import annotations

from connectors.profile import PersonObject, SystemProfile

SYSTEM = "memcrm"
BATCH_MAX = 25                 # MemCRM takes at most 25 records per write call

OUTPUTS = {"grade": "fit_grade", "score": "interest_score", "stage": "funnel_stage",
           "segment": "segment", "reasons": "why", "mql_date": "mql_on"}

# Not registered on import: the test registers it for its own duration (a shipped connector
# calls connectors.registry.register here and is listed in registry.BUILTIN).
PROFILE = SystemProfile(
    system=SYSTEM, label="MemCRM",
    person_objects=(PersonObject("people", "email", match_rank=3),),
    outputs=OUTPUTS, batch_size=BATCH_MAX, page_size=50, unique_email=True,
    stage_values={"MQL": "hot", "SQL": "hot"}, stage_fallback="warm")
