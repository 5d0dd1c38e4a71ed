"""Preflight: what the settings and mappings require of the org and the portal, whether the
live schema meets it (`doctor`, `check --live`, the refusal of `sync`/`run`), and the set-up
that creates what is missing (`setup`).

- ``requirements.py`` settings + rules -> requirements (pure);
- ``checks.py``       requirements + schema facts -> doctor rows (pure);
- ``live.py``         reads the facts through the connectors and caches them in the state DB;
- ``setup_plan.py``   rows + facts -> the set-up actions (pure); ``setup_apply.py`` runs them;
- ``package.py``      writes the Salesforce part as a Metadata API package.
"""
