"""Which Salesforce Tasks are calls: Salesforce's own subtype first, a whole-word subject after."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.salesforce.streams import task_kind

DONE = {"Status": "Completed", "IsClosed": True}


@pytest.mark.parametrize(("fields", "kind"), [
    # The worst inputs: subjects that merely begin with the letters c-a-l-l.
    ({"Subject": "California trip notes", **DONE}, "task_completed"),
    ({"Subject": "Callisto onboarding", **DONE}, "task_completed"),
    ({"Subject": "calligraphy sample sent"}, None),
    # Salesforce says it is an e-mail: the subject does not make it a call.
    ({"Subject": "Call me maybe", "TaskSubtype": "Email", **DONE}, "task_completed"),
    ({"Subject": "Call", "TaskSubtype": "Task"}, None),
    # Calls, by subtype, by type, or by a subject naming one when neither is set.
    ({"Subject": "Pricing", "TaskSubtype": "Call", **DONE}, "call_attempted"),
    ({"Subject": "Pricing", "Type": "Call", "CallDisposition": "Connected"}, "call_connected"),
    ({"Subject": "Callback: pricing question"}, "call_attempted"),
    ({"Subject": "  Called Ana about the demo", "CallDisposition": "Spoke to Ana"},
     "call_connected"),
    ({"Subject": "Phone call - no answer", **DONE}, "call_attempted"),
    ({"Subject": "CALL", **DONE}, "call_attempted"),
    # The agent's own task never counts, whatever it is called.
    ({"Subject": "Call", "TaskSubtype": "Call", "Idempotency_Key__c": "alert:1", **DONE}, None),
])
def test_task_kind(fields: dict[str, Any], kind: str | None) -> None:
    assert task_kind(fields) == kind
