"""HubSpot reading with plain data: read modes, the paginator, the sweep's state and body."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.base import StreamSpec
from connectors.hubspot import paging, streams
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.streams import ReadMode, read_mode
from connectors.hubspot.sweep import SweepState, search_body
from syncagent.errors import ConfigError
from syncagent.settings import HubSpotSettings


def _connector(table: tuple[StreamSpec, ...]) -> HubSpotConnector:
    # building the client makes no call: an unreachable base URL is fine
    settings = HubSpotSettings(base_url="https://127.0.0.1:9", access_token=SecretStr("t"))
    return HubSpotConnector(HubSpotClient(settings), lookback=timedelta(seconds=60),
                            stream_table=table)


def _stream(**options: Any) -> StreamSpec:
    return StreamSpec(name="deals", system="hubspot", object="deals", fields=("dealname",),
                      cursor_field="hs_lastmodifieddate", options=options)


@pytest.mark.parametrize("options", [{"mode": "serach"}, {}])
def test_a_stream_without_a_known_read_mode_is_refused_when_the_connector_is_built(
        options: dict[str, Any]) -> None:
    """An unknown mode used to be read as web events; now it names the stream and the modes."""
    with pytest.raises(ConfigError) as caught:
        _connector((*streams.STREAMS, _stream(**options)))
    assert "'deals'" in caught.value.message and "search" in str(caught.value.hint)


def test_read_modes_given_as_plain_text_are_the_typed_modes() -> None:
    assert read_mode(_stream(mode="archived")) is ReadMode.ARCHIVED
    assert {read_mode(s) for s in streams.STREAMS} == set(ReadMode)
    conn = _connector((_stream(mode="search"),))
    assert set(conn.streams) == {"deals"}


def test_the_paginator_follows_after_and_stops_on_the_last_page() -> None:
    answers = {None: {"results": [1], "paging": {"next": {"after": 100}}},
               "100": {"results": [2], "paging": {"next": {"after": "200"}}},
               "200": {"results": [3]}}
    asked: list[str | None] = []

    def fetch(after: str | None) -> dict[str, Any]:
        asked.append(after)
        return answers[after]

    walked = [(data["results"], after) for data, after in paging.walk(fetch)]
    assert walked == [([1], "100"), ([2], "200"), ([3], None)]
    assert asked == [None, "100", "200"]


def test_the_paginator_fetches_nothing_the_caller_does_not_ask_for() -> None:
    asked: list[str | None] = []

    def fetch(after: str | None) -> dict[str, Any]:
        asked.append(after)
        return {"paging": {"next": {"after": str(int(after or 0) + 1)}}}

    pages = paging.walk(fetch, after="7")
    assert next(pages)[1] == "8"
    assert asked == ["7"]
    assert paging.next_after({"paging": {}}) is None


def test_the_sweep_state_survives_the_state_db_as_json() -> None:
    state = SweepState(upper=2_000, lower=1_000, high=1_500, skip=[[1_100, 1_200]])
    back = SweepState.of(json.loads(json.dumps(state.to_dict())))
    assert back == state
    # a sweep stored before skips existed (or with none) has no "skip" key, and keeps none
    legacy = {"lower": None, "upper": 2_000, "high": None}
    assert SweepState.of(legacy).to_dict() == legacy


def test_a_sweep_body_leaves_out_own_write_intervals_and_filters_by_id() -> None:
    spec = streams.STREAMS_BY_NAME["contacts"]
    state = SweepState(upper=2_000, lower=1_000, skip=[[1_100, 1_200]])
    body = search_body(spec, state, last_id="42", after="200")
    ranges = [{f["operator"]: f["value"] for f in g["filters"]} for g in body["filterGroups"]]
    assert ranges == [{"LTE": "1099", "GTE": "1000", "GT": "42"},
                      {"LTE": "2000", "GTE": "1201", "GT": "42"}]
    assert body["after"] == "200" and body["limit"] == 200
