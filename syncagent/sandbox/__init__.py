"""Local emulators of the Salesforce and HubSpot APIs, seed data and fault injection.

Start one in-process with :func:`syncagent.sandbox.server.start_sandbox`, or from the shell
with ``syncagent sandbox``. See docs/sandbox.md.
"""
