"""HubSpot task creates that never make a second task for one key.

HubSpot has no property a task can be upserted by (modelled as the harsher case: none can be
made unique on tasks), so a create whose answer was lost — a timeout, a reset, a 5xx after the
write landed — cannot simply be sent again. The agent's key goes on the task itself, as the
body's last line, and before any create the tasks already associated with the same contacts
are read (v4 associations, then a batch read: no search-index lag) and a task found with the
key counts as created. The look-up costs two calls a batch, so it runs only for the items that
may have been sent before: the outbox marks a row ``never_sent`` on its first claim, and any
earlier failure, release (a killed process's claim) or expired claim clears the mark; an item
without the mark (a direct caller, a resend after a crash) is always looked up. A create that
fails with an unknown outcome is not retried blindly by the client; it is looked up again and
only the tasks still missing are sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from connectors.base import WriteItem, WriteRef, WriteResult
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.limits import ASSOCIATION_BATCH, BATCH_MAX
from connectors.hubspot.writes import BatchWriter
from connectors.profile import TaskSpec

KEY_LINE = "syncagent key: "
SENDS = 3          # a create is sent at most this often in one push (looked up in between)


def with_key_line(body: Any, key: str) -> str:
    """The task body with the key as its last line (once)."""
    text = str(body or "").rstrip()
    line = KEY_LINE + key
    if text.endswith(line):
        return text
    return f"{text}\n\n{line}" if text else line


def key_of(body: Any) -> str | None:
    """The agent's key from a task body's last line, or None."""
    last = str(body or "").rstrip().rsplit("\n", 1)[-1].strip()
    return last[len(KEY_LINE):] if last.startswith(KEY_LINE) else None


class GuardedTasks:
    """Creates tasks through the batch writer; see the module docstring."""

    def __init__(self, client: HubSpotClient, writer: BatchWriter, spec: TaskSpec) -> None:
        self.client = client
        self.writer = writer
        self.spec = spec
        self.found_existing = 0       # creates answered from a task that was already there
        self.lookup_calls = 0

    def create(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        items = [self._keyed(item) for item in batch]
        out: dict[int, WriteResult] = {}
        waiting = [n for n, item in enumerate(items) if item.key]
        for n, item in enumerate(items):
            if not item.key:      # nothing to look it up by: refused, never sent twice
                out[n] = WriteResult(WriteRef(self.spec.object, None, None), "rejected",
                                     code="NO_IDEMPOTENCY_KEY",
                                     message="a task create needs its idempotency key")
        # the items an earlier attempt may have created: looked up before they are sent
        maybe_sent = {n for n in waiting if not items[n].never_sent}
        for _ in range(SENDS):
            if not waiting:
                break
            waiting = self._send_missing(items, waiting, out, maybe_sent)
            maybe_sent.update(waiting)     # an unknown outcome may have landed
        for n in waiting:         # still unknown: the outbox tries again, looking up first
            out.setdefault(n, WriteResult(WriteRef(self.spec.object, None, items[n].key),
                                          "retryable", code="OUTCOME_UNKNOWN",
                                          message="the create's outcome is unknown"))
        return [out[n] for n in range(len(items))]

    def _send_missing(self, items: list[WriteItem], waiting: list[int],
                      out: dict[int, WriteResult], maybe_sent: set[int]) -> list[int]:
        """Look up the waiting items that may have been sent before, send the ones not found
        once; the indexes whose outcome is still unknown (a timeout, a 5xx) are returned."""
        looked_up = [items[n] for n in waiting if n in maybe_sent]
        existing = self.existing(looked_up) if looked_up else {}
        send = []
        for n in waiting:
            task_id = existing.get(str(items[n].key))
            if task_id is not None:
                self.found_existing += 1
                out[n] = WriteResult(WriteRef(self.spec.object, None, items[n].key), "ok",
                                     id=task_id, created=False)
            else:
                send.append(n)
        if not send:
            return []
        answers = self.writer.write(self.spec.object, "create", [items[n] for n in send],
                                    resend_unknown=False)
        unknown = []
        for n, answer in zip(send, answers, strict=True):
            if answer.status == "retryable":   # it may have landed: look it up again
                unknown.append(n)
            else:
                out[n] = answer
        return unknown

    def _keyed(self, item: WriteItem) -> WriteItem:
        if not item.key:
            return item
        fields = {**item.fields, self.spec.body: with_key_line(item.fields.get(self.spec.body),
                                                                item.key)}
        return replace(item, fields=fields)

    def existing(self, items: Iterable[WriteItem]) -> dict[str, str]:
        """Key -> task id of the agent's tasks already on the items' contacts."""
        association = self.spec.association or "contacts"
        contacts = sorted({str(item.associations.get(association)) for item in items
                           if item.associations.get(association)})
        task_ids = sorted({task for found in self._tasks_of(association, contacts).values()
                           for task in found})
        keys: dict[str, str] = {}
        for i in range(0, len(task_ids), BATCH_MAX):
            self.lookup_calls += 1
            data = self.client.batch(self.spec.object, "read",
                                     [{"id": t} for t in task_ids[i:i + BATCH_MAX]],
                                     properties=[self.spec.body])
            for row in data.get("results") or []:
                key = key_of((row.get("properties") or {}).get(self.spec.body))
                if key is not None:
                    keys.setdefault(key, str(row["id"]))
        return keys

    def _tasks_of(self, association: str, contacts: list[str]) -> Mapping[str, list[str]]:
        found: dict[str, list[str]] = {}
        for i in range(0, len(contacts), ASSOCIATION_BATCH):
            self.lookup_calls += 1
            data = self.client.associations(association, self.spec.object,
                                            contacts[i:i + ASSOCIATION_BATCH])
            for row in data.get("results") or []:
                found[str(row["from"]["id"])] = [str(t["toObjectId"])
                                                 for t in row.get("to") or []]
        return found
