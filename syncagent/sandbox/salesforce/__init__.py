"""Emulator of the Salesforce REST API (plus SOAP login and OAuth) for the sandbox.

Driven by the unmodified simple-salesforce: see ``transport.sandbox_session`` for pointing its
login flows at the sandbox.
"""

from syncagent.sandbox.common import SalesforceCredentials
from syncagent.sandbox.salesforce.org import SalesforceOrg
from syncagent.sandbox.salesforce.router import make_router
from syncagent.sandbox.salesforce.transport import (
    LOGIN_HOSTS,
    SandboxAdapter,
    SandboxLoginAdapter,
    sandbox_session,
)

__all__ = ["LOGIN_HOSTS", "SalesforceCredentials", "SalesforceOrg", "SandboxAdapter",
           "SandboxLoginAdapter", "make_router",
           "sandbox_session"]
