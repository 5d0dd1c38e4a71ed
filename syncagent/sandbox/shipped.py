"""The agent's vocabulary as the shipped mapping files define it, for the configured org.

A ``configured`` sandbox stands for an org and a portal where the agent's set-up has run, and
set-up creates picklist values, enumeration options and lists from the mapping files (see
``syncagent/preflight/requirements.py``). The sandbox reads them from the same files through
the engine's loader instead of keeping copies, so editing ``nurture.yaml`` or the segment
names in ``scoring.yaml`` cannot leave the sandbox behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import get_args

from syncagent.defaults import packaged_mappings_dir
from syncagent.engine.loader import load_rules
from syncagent.engine.rule_files import Stage


@dataclass(frozen=True)
class ShippedVocabulary:
    """Values the agent writes, in the order the files (or the Stage type) give them."""

    stages: tuple[str, ...]            # Lifecycle_Stage__c
    segments: tuple[str, ...]          # Segment__c and lead_segment
    nurture_tracks: tuple[str, ...]    # Nurture_Track__c and nurture_track, without NO_TRACK
    nurture_lists: tuple[str, ...]     # the HubSpot lists the tracks name

@cache
def shipped() -> ShippedVocabulary:
    """Read once per process from the mapping files shipped with this install."""
    rules = load_rules(packaged_mappings_dir())
    names = rules.scoring.segments.names
    return ShippedVocabulary(
        stages=get_args(Stage),
        segments=tuple(getattr(names, quadrant) for quadrant in type(names).model_fields),
        nurture_tracks=tuple(track.nurture_track_value for track in rules.nurture.tracks),
        nurture_lists=tuple(track.hubspot_list for track in rules.nurture.tracks))
