"""Salesforce connector: REST through simple-salesforce (see client.py)."""
