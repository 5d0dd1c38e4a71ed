"""The Salesforce REST client: the only module that imports simple_salesforce.

It logs in (password + token over SOAP, OAuth password, JWT bearer, client credentials, or a
given session id), trusts a custom CA bundle, re-logs in once on ``INVALID_SESSION_ID``,
counts every API call, keeps the agent inside its daily budget (``Sforce-Limit-Info``), and
translates every failure through ``errors.py``. Retries wrap each call in ``retry.py``'s policy;
simple-salesforce's own re-login loop is not used (we log in ourselves and hand it a session).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlparse

import requests
import structlog
from simple_salesforce import Salesforce, SalesforceLogin, format_soql
from zeep.helpers import serialize_object

from connectors.base import ApiCallCounter
from connectors.budget import DailyBudget
from connectors.network import unreachable
from connectors.retry import RetryPolicy
from connectors.salesforce import errors
from connectors.tls import tls_error
from syncagent.errors import (
    AuthError,
    ConfigError,
    FatalError,
    RateLimited,
    RemoteTimeout,
    ServerError,
    SyncAgentError,
)
from syncagent.settings import SalesforceSettings

log = structlog.get_logger(__name__)

T = TypeVar("T")

_LOGIN_PATHS = ("/services/oauth2/token", "/services/Soap/u/")

__all__ = ["SalesforceClient", "format_soql"]

#: Login flows a real org may refuse. SOAP login() is unavailable from API v65, off by default
#: in orgs created from Winter '26 and retired in Summer '27 (SOAP API Developer Guide,
#: login()); the OAuth username-password flow is blocked by default in orgs created since
#: Summer '23 (Salesforce Help, "OAuth 2.0 Username-Password Flow for Special Scenarios").
LEGACY_FLOWS = ("password", "oauth_password")
LEGACY_HINT = ("Use salesforce.auth: jwt (a connected app with a certificate) or "
               "client_credentials (needs the org's My Domain): SOAP login() is gone from API "
               "v65 and off in new orgs, and new orgs block the OAuth password flow.")
#: What an org answers when a login flow itself is refused, not the credentials.
FLOW_REFUSED = ("UNSUPPORTED_API_VERSION", "INVALID_OPERATION", "unsupported_grant_type")


class _LoginRoutingSession(requests.Session):
    """Sends ``https://{domain}.salesforce.com/...`` (hard-coded in simple-salesforce's login
    helpers) to ``login_url`` instead, so a My Domain proxy or the local sandbox can serve logins.
    """

    def __init__(self, domain: str, login_url: str | None,
                 ca_bundle: Path | str | None = None) -> None:
        super().__init__()
        self._prefix = f"https://{domain}.salesforce.com"
        self._target = login_url.rstrip("/") if login_url else None
        # Per request, not only session.verify: with trust_env, requests lets
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session-level CA.
        self._ca = str(ca_bundle) if ca_bundle is not None else None
        if self._ca is not None:
            self.verify = self._ca

    def request(self, method: str, url: str,  # type: ignore[override]
                *args: Any, **kwargs: Any) -> requests.Response:
        if self._target and isinstance(url, str) and url.startswith(self._prefix):
            rest = url[len(self._prefix):]
            # only the login endpoints: with a My Domain the instance has the same host
            if rest.startswith(_LOGIN_PATHS):
                url = self._target + rest
        if self._ca is not None:
            kwargs["verify"] = self._ca
        return super().request(method, url, *args, **kwargs)


class SalesforceClient:
    """Thin, counted, budgeted access to one org's REST API."""

    def __init__(self, settings: SalesforceSettings, *, ca_bundle: Path | str | None = None,
                 retry: RetryPolicy | None = None, budget: DailyBudget | None = None,
                 calls: ApiCallCounter | None = None) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.budget = budget or DailyBudget("salesforce", settings.daily_budget_share)
        self.calls = calls or ApiCallCounter("salesforce")
        self.timeout = settings.timeout_seconds
        self.session = _LoginRoutingSession(settings.domain, settings.login_url, ca_bundle)
        self.session.hooks["response"].append(self._on_response)
        self.logins = 0
        self.reauths = 0
        self._sf: Salesforce | None = None

    # --- session ---------------------------------------------------------------------------
    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        info = response.headers.get("Sforce-Limit-Info")
        if info:
            used, allocation = _parse_limit_info(info)
            self.budget.observe(used, allocation)

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._login()
        return self._sf

    def instance_host(self) -> str | None:
        """The org's host (after a login, the instance it answered with); no call is made."""
        if self._sf is not None:
            return str(self._sf.sf_instance)
        configured = self.settings.instance_url
        return urlparse(configured).netloc or configured if configured else None

    def _secret(self, name: str) -> str | None:
        value = getattr(self.settings, name)
        return value.get_secret_value() if value is not None else None

    def _login(self) -> Salesforce:
        """Log in with the configured flow; a session-id setup makes no call here."""
        s = self.settings
        version = s.api_version
        if s.auth == "session":
            session_id, instance = self._secret("session_id"), s.instance_url
            if not session_id or not instance:
                raise ConfigError("salesforce.auth=session needs salesforce.session_id and "
                                  "salesforce.instance_url",
                                  hint="Set both, or choose another salesforce.auth flow.")
            return Salesforce(session_id=session_id, instance_url=instance, version=version,
                              session=self.session, object_pairs_hook=dict)
        kwargs = self._login_kwargs()
        if s.auth in LEGACY_FLOWS:
            log.warning("salesforce.legacy_login", auth=s.auth, hint=LEGACY_HINT)
        self.logins += 1
        self.calls.add("login")
        try:
            session_id, instance = SalesforceLogin(session=self.session, sf_version=version,
                                                   domain=s.domain, **kwargs)
        except Exception as exc:  # translated right here
            raise self._login_error(exc) from None
        # plain dicts, not the library's default OrderedDict (~60% more memory a record,
        # and a Composite answer holds five query pages of 2,000 records at once)
        return Salesforce(session_id=session_id, instance=instance, version=version,
                          session=self.session, object_pairs_hook=dict)

    def _login_kwargs(self) -> dict[str, Any]:
        s = self.settings
        need: dict[str, tuple[str, ...]] = {
            "password": ("username", "password", "security_token"),
            "oauth_password": ("username", "password", "consumer_key", "consumer_secret"),
            "jwt": ("username", "consumer_key"),
            "client_credentials": ("consumer_key", "consumer_secret"),
        }
        missing = [name for name in need[s.auth] if getattr(s, name) in (None, "")]
        if s.auth == "jwt" and s.private_key is None and s.private_key_file is None:
            missing.append("private_key or private_key_file")
        if missing:
            raise ConfigError(
                f"salesforce.auth={s.auth} needs: " + ", ".join(f"salesforce.{m}" for m in missing),
                hint="Set them in syncagent.yaml or SYNCAGENT_SALESFORCE__<NAME>.")
        if s.auth == "password":
            return {"username": s.username, "password": self._secret("password"),
                    "security_token": self._secret("security_token")}
        if s.auth == "oauth_password":
            # Outside trusted IP ranges the OAuth password flow wants password + token.
            password = (self._secret("password") or "") + (self._secret("security_token") or "")
            return {"username": s.username, "password": password,
                    "consumer_key": s.consumer_key,
                    "consumer_secret": self._secret("consumer_secret")}
        if s.auth == "jwt":
            key = self._secret("private_key")
            if key is None and s.private_key_file is not None:
                key = Path(s.private_key_file).read_text(encoding="utf-8")
            return {"username": s.username, "consumer_key": s.consumer_key, "privatekey": key}
        if s.domain in ("login", "test"):
            raise ConfigError("salesforce.auth=client_credentials needs the org's My Domain",
                              hint="Set salesforce.domain to your My Domain prefix "
                                   "(e.g. acme.my).")
        return {"consumer_key": s.consumer_key,
                "consumer_secret": self._secret("consumer_secret")}

    def _login_error(self, exc: BaseException) -> SyncAgentError:
        tls = tls_error(exc, system="salesforce", operation="login",
                        host_setting="salesforce.domain / salesforce.login_url")
        if tls is not None:
            return tls
        failed = unreachable(exc, system="salesforce", operation="login",
                             setting="salesforce.login_url or salesforce.domain")
        if failed is not None:
            return failed
        if isinstance(exc, requests.Timeout | requests.ConnectionError):
            return RemoteTimeout(f"salesforce login: {type(exc).__name__}", system="salesforce")
        code = getattr(exc, "code", None)
        if isinstance(code, int) and code >= 500:
            return ServerError(f"salesforce login: HTTP {code}", system="salesforce")
        if code == 429:
            return RateLimited("salesforce login: HTTP 429", system="salesforce")
        if code is None and not hasattr(exc, "auth_message"):
            # the login endpoint answered with something that is not a login answer (e.g. a
            # 5xx error page); worth another attempt
            return ServerError(f"salesforce login: unexpected answer ({type(exc).__name__})",
                               system="salesforce")
        message = getattr(exc, "auth_message", "") or ""
        hint = "Check the Salesforce credentials (salesforce.* settings)."
        if code in FLOW_REFUSED:
            hint = LEGACY_HINT
        return AuthError(f"salesforce login refused ({self.settings.auth}): {code} {message}",
                         hint=hint, system="salesforce", code=str(code))

    def relogin(self) -> None:
        """Log in again now: a Composite part refused with ``INVALID_SESSION_ID`` gets the
        one re-login a plain call would (``_attempt``); the given-session flow cannot."""
        self._relogin()

    def _relogin(self) -> None:
        if self.settings.auth == "session":
            raise AuthError("salesforce: the given session id has expired",
                            hint="Give a fresh salesforce.session_id, or use a login flow so "
                                 "the agent can log in again by itself.", system="salesforce")
        self.reauths += 1
        log.info("salesforce.relogin", auth=self.settings.auth)
        self._sf = self._login()

    # --- calls -----------------------------------------------------------------------------
    def call(self, operation: str, fn: Callable[[Salesforce], T], *,
             resend_unknown: bool = True) -> T:
        """One API call under the retry policy, the budget, the counter and re-auth-once.
        ``resend_unknown=False``: a timeout or 5xx is raised at once instead of sent again (a
        write that is not idempotent: the caller finds out whether it landed, readback.py)."""
        policy = self.retry if resend_unknown else self.retry.refused_only()
        return policy.call(self._attempt, operation, fn)

    def _attempt(self, operation: str, fn: Callable[[Salesforce], T]) -> T:
        reauthed = False
        while True:
            sf = self.sf
            self.budget.check()
            self.calls.add(operation)
            self.budget.spend()
            try:
                return fn(sf)
            except Exception as exc:  # all go through errors.py
                error = errors.translate(exc, operation=operation)
            if (isinstance(error, AuthError) and error.fields.get("code") == "INVALID_SESSION_ID"
                    and not reauthed):
                self._relogin()
                reauthed = True
                continue
            raise error

    def query(self, soql: str, *, include_deleted: bool = False) -> dict[str, Any]:
        """First batch of a query (GET; the caller keeps it under the URI limit)."""
        path = "queryAll/" if include_deleted else "query/"
        return _dict(self.call("query", lambda sf: sf.restful(path, params={"q": soql},
                                                              timeout=self.timeout)))

    def query_more(self, next_records_url: str) -> dict[str, Any]:
        return self.call("query_more", lambda sf: sf.query_more(
            next_records_url, identifier_is_url=True, timeout=self.timeout))

    def composite(self, subrequests: Sequence[Mapping[str, Any]], *,
                  operation: str = "composite",
                  resend_unknown: bool = True) -> list[dict[str, Any]]:
        """One Composite call (one API call), counted as ``operation`` (reads and writes
        apart); match the answers by referenceId."""
        body = {"allOrNone": False, "compositeRequest": list(subrequests)}
        result = self.call(operation, lambda sf: sf.restful(
            "composite", method="POST", json=body, timeout=self.timeout),
            resend_unknown=resend_unknown)
        return list((result or {}).get("compositeResponse", []))

    def query_url(self, soql: str, *, include_deleted: bool = False) -> str:
        """A query as a path under /services/data (for Composite subrequests)."""
        path = "queryAll/" if include_deleted else "query/"
        return f"/services/data/v{self.settings.api_version}/{path}?q={quote(soql, safe='')}"

    def data_path(self, path: str, params: Mapping[str, str] | None = None) -> str:
        url = f"/services/data/v{self.settings.api_version}/{path}"
        return url + ("?" + urlencode(params) if params else "")

    def get_url_bytes(self, soql: str) -> int:
        """How long the GET request URL of this query would be."""
        base = f"https://{self.settings.instance_url or 'x.my.salesforce.com'}"
        return len((base + self.query_url(soql)).encode("utf-8"))

    def collections_at(self, method: str, path: str, records: list[dict[str, Any]], *,
                       resend_unknown: bool = True) -> list[dict[str, Any]]:
        """sObject Collections at ``path`` (``composite/sobjects``, or
        ``composite/sobjects/{SObject}/{ExtIdField}`` to upsert), at most COLLECTION_MAX
        records: results in request order."""
        body = {"allOrNone": False, "records": records}
        result = self.call(f"collections_{method.lower()}", lambda sf: sf.restful(
            path, method=method, json=body, timeout=self.timeout),
            resend_unknown=resend_unknown)
        return list(result or [])

    def describe(self, sobject: str) -> dict[str, Any]:
        return _dict(self.call("describe", lambda sf: sf.restful(
            f"sobjects/{sobject}/describe", timeout=self.timeout)))

    def limits(self) -> dict[str, Any]:
        return _dict(self.call("limits", lambda sf: sf.restful("limits/", timeout=self.timeout)))

    def versions(self) -> list[str]:
        """The API versions the org serves (``GET /services/data/``), oldest first."""
        def fetch(sf: Salesforce) -> Any:
            response = self.session.get(f"https://{sf.sf_instance}/services/data/",
                                        headers=sf.headers, timeout=self.timeout)
            response.raise_for_status()
            return response.json()
        return [str(v.get("version")) for v in self.call("versions", fetch) or []
                if isinstance(v, dict)]

    def insert(self, sobject: str, record: Mapping[str, Any]) -> str:
        """Create one record (set-up's PermissionSetAssignment); its new id."""
        result = self.call(f"insert_{sobject}", lambda sf: sf.restful(
            f"sobjects/{sobject}/", method="POST", json=dict(record), timeout=self.timeout))
        return str((result or {}).get("id") or "")

    def metadata_read(self, type_name: str, names: Sequence[str]) -> list[dict[str, Any]]:
        """``readMetadata`` through ``sf.mdapi``: one dict per name; a name that does not
        exist comes back without ``fullName``."""
        def read(mdapi: Any) -> list[dict[str, Any]]:
            found = getattr(mdapi, type_name).read(list(names))
            found = found if isinstance(found, list) else [found]
            return [dict(serialize_object(item, dict) or {}) for item in found]
        return self._metadata(f"metadata_read_{type_name}", read)

    def metadata_upsert(self, type_name: str, components: Sequence[Mapping[str, Any]], *,
                        verb: str = "upsert") -> None:
        """``upsertMetadata`` (or, with ``verb="update"``, ``updateMetadata``: standard value
        sets exist already and are only ever updated) through ``sf.mdapi``, at most 10
        components a call."""
        def save(mdapi: Any) -> None:
            kind = getattr(mdapi, type_name)
            for i in range(0, len(components), 10):
                getattr(kind, verb)([kind(**dict(c)) for c in components[i:i + 10]])
        self._metadata(f"metadata_{verb}_{type_name}", save)

    def _metadata(self, operation: str, fn: Callable[[Any], T]) -> T:
        def run(sf: Salesforce) -> T:
            mdapi = sf.mdapi
            # zeep brings its own requests session, which would neither trust a custom CA nor
            # count calls: give it ours.
            mdapi._client.transport.session = self.session
            try:
                return fn(mdapi)
            except Exception as exc:  # a SOAP fault or a component's refusal (both untyped)
                text = " ".join(str(exc).split())
                if "INVALID_SESSION_ID" in text:
                    raise AuthError("salesforce metadata: session expired", system="salesforce",
                                    code="INVALID_SESSION_ID") from None
                raise FatalError(f"salesforce {operation} refused: {text}",
                                 hint="Read the message: the org names what it refused.",
                                 system="salesforce", operation=operation) from None
        return self.call(operation, run)

    def close(self) -> None:
        self.session.close()


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if value else {}


def _parse_limit_info(value: str) -> tuple[int | None, int | None]:
    """``api-usage=USED/MAX`` (possibly among other comma-separated entries)."""
    for part in value.split(","):
        name, _, figures = part.strip().partition("=")
        if name.strip() == "api-usage":
            used, _, allocation = figures.partition("/")
            try:
                return int(used), int(allocation)
            except ValueError:
                return None, None
    return None, None
