"""syncagent: one shared definition of a qualified lead, kept on Salesforce and HubSpot."""

__version__ = "0.1.0"
