"""HubSpot connector: CRM v3 through hubspot-api-client (see client.py)."""
