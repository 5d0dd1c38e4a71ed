"""A third CRM kept in memory, built by following docs/adding-a-connector.md step by step."""
