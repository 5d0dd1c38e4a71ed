"""Connectors: the agent's hands on Salesforce and HubSpot (see connectors/base.py)."""
