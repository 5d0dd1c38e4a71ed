"""Emulator of the HubSpot CRM v3 API (contacts, engagements, properties, owners, lists,
events), as hubspot-api-client 12.x calls it."""

from syncagent.sandbox.hubspot.api import make_router
from syncagent.sandbox.hubspot.portal import HubSpotError, HubSpotPortal

__all__ = ["HubSpotError", "HubSpotPortal", "make_router"]
