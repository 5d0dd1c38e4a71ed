"""The sandbox context with both systems typed, for the modules that drive both emulators
(server, seeding, simulations, poison values, middleware).

It lives above both emulator packages: ``common`` is below them and imports neither, so no
import cycle runs through the context.
"""

from __future__ import annotations

from typing import TypeAlias

from syncagent.sandbox.common import SandboxContext
from syncagent.sandbox.hubspot.portal import HubSpotPortal
from syncagent.sandbox.salesforce.org import SalesforceOrg

Context: TypeAlias = SandboxContext[SalesforceOrg, HubSpotPortal]
