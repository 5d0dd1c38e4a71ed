"""Salesforce logins: the SOAP ``login()`` call and the OAuth 2.0 token endpoint.

Answers are shaped like Salesforce's: a SOAP envelope with ``sessionId`` and ``serverUrl`` (or a
``sf:INVALID_LOGIN`` fault, HTTP 500), and OAuth JSON with ``access_token`` / ``instance_url``
(or ``{"error", "error_description"}``, HTTP 400). Logins are not API calls and do not count
against the daily allocation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import xml.etree.ElementTree as ET
from html import escape
from typing import Any
from urllib.parse import parse_qs

import jwt

from syncagent.sandbox.salesforce.org import SalesforceContext

JWT_MAX_LIFETIME_S = 180        # Salesforce: the assertion must expire within 3 minutes
CLOCK_SKEW_S = 5
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")

_SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"


def soap_fault(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        f'xmlns:soapenv="{_SOAP_NS}" xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>")


INVALID_LOGIN = "Invalid username, password, security token; or user locked out."
MUST_USE_TOKEN = (
    "Invalid username, password, security token; or user locked out. Are you at a new "
    "location? When accessing Salesforce--either via a desktop client or the API--from outside "
    "of your company's trusted networks, you must add a security token to your password to "
    "log in. To get your new security token, log in to Salesforce. From your personal "
    "settings, enter Reset My Security Token in the Quick Find box, then select Reset My "
    "Security Token.")


def _soap_text(body: bytes, local_name: str) -> str | None:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == local_name:
            return element.text or ""
    return None


# SOAP login() "remains available in API version 64.0 and earlier" and "is disabled by default
# for orgs created in Winter '26 and later" (SOAP API Developer Guide, login():
# https://developer.salesforce.com/docs/platform/api/guide/sforce-api-calls-login.html). The
# fault codes are not documented for either case: retired versions answer
# 500 UNSUPPORTED_API_VERSION (SOAP API End-of-Life Policy), so that is used for v65+, and
# INVALID_OPERATION for an org where login() is off.
LAST_SOAP_LOGIN_VERSION = 64


def _soap_login_refusal(ctx: SalesforceContext, version: str) -> tuple[int, str] | None:
    try:
        major = int(float(version))
    except ValueError:
        return 500, soap_fault("UNSUPPORTED_API_VERSION", f"Invalid Api version specified on "
                               f"URL: {version}")
    if major > LAST_SOAP_LOGIN_VERSION:
        return 500, soap_fault("UNSUPPORTED_API_VERSION", "login() is not available in API "
                               f"version {version}: use OAuth 2.0 (JWT bearer or client "
                               "credentials)")
    if not ctx.sf.soap_login_enabled:
        return 500, soap_fault("INVALID_OPERATION", "SOAP API login() is disabled in this org: "
                               "use OAuth 2.0 (JWT bearer or client credentials)")
    return None


def soap_login(ctx: SalesforceContext, version: str, body: bytes) -> tuple[int, str]:
    """POST /services/Soap/u/{version}: (status, XML)."""
    refusal = _soap_login_refusal(ctx, version)
    if refusal is not None:
        return refusal
    org = ctx.sf
    creds = org.credentials
    username = _soap_text(body, "username")
    password = _soap_text(body, "password")
    if username is None or password is None:
        return 500, soap_fault("INVALID_LOGIN", INVALID_LOGIN)
    if username != creds.username:
        return 500, soap_fault("INVALID_LOGIN", INVALID_LOGIN)
    if password == creds.password:
        return 500, soap_fault("LOGIN_MUST_USE_SECURITY_TOKEN", MUST_USE_TOKEN)
    if password != creds.password + creds.security_token:
        return 500, soap_fault("INVALID_LOGIN", INVALID_LOGIN)
    sid = org.new_session()
    base = ctx.base_url
    user_id = org.integration_user_id
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        f'xmlns:soapenv="{_SOAP_NS}" xmlns="urn:partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse>'
        f"<result><metadataServerUrl>{base}/services/Soap/m/{version}/{org.org_id}"
        "</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{base}/services/Soap/u/{version}/{org.org_id}</serverUrl>"
        f"<sessionId>{escape(sid)}</sessionId><userId>{user_id}</userId><userInfo>"
        "<accessibilityMode>false</accessibilityMode><currencySymbol>$</currencySymbol>"
        "<orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>"
        "<orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>"
        "<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>"
        "<orgHasPersonAccounts>false</orgHasPersonAccounts>"
        f"<organizationId>{org.org_id}</organizationId>"
        "<organizationMultiCurrency>false</organizationMultiCurrency>"
        "<organizationName>syncagent sandbox</organizationName>"
        "<profileId>00e8c000000SBOXAAW</profileId><roleId xsi:nil=\"true\"/>"
        "<sessionSecondsValid>7200</sessionSecondsValid>"
        f"<userDefaultCurrencyIsoCode xsi:nil=\"true\"/><userEmail>{escape(creds.username)}"
        "</userEmail><userFullName>Integration User</userFullName>"
        f"<userId>{user_id}</userId><userLanguage>en_US</userLanguage>"
        f"<userLocale>en_US</userLocale><userName>{escape(creds.username)}</userName>"
        "<userTimeZone>GMT</userTimeZone><userType>Standard</userType>"
        "<userUiSkin>Theme3</userUiSkin></userInfo></result></loginResponse></soapenv:Body>"
        "</soapenv:Envelope>")
    return 200, xml


def _oauth_error(error: str, description: str, status: int = 400) -> tuple[int, dict[str, Any]]:
    return status, {"error": error, "error_description": description}


def _token(ctx: SalesforceContext, *, signed: bool = True) -> dict[str, Any]:
    org = ctx.sf
    sid = org.new_session()
    issued = str(int(time.time() * 1000))
    identity = f"{ctx.base_url}/id/{org.org_id}/{org.integration_user_id}"
    body: dict[str, Any] = {"access_token": sid, "instance_url": ctx.base_url, "id": identity,
                            "token_type": "Bearer", "issued_at": issued}
    if signed:
        digest = hmac.new(org.credentials.consumer_secret.encode(),
                          (identity + issued).encode(), hashlib.sha256).digest()
        body["signature"] = base64.b64encode(digest).decode()
    body["scope"] = "api"
    return body


def oauth_token(ctx: SalesforceContext, body: bytes, authorization: str | None,
                ) -> tuple[int, dict[str, Any]]:
    """POST /services/oauth2/token for the password, client-credentials and JWT-bearer grants."""
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    grant = form.get("grant_type")
    creds = ctx.sf.credentials
    if grant == "password":
        if not ctx.sf.oauth_password_enabled:
            # Blocked by default in orgs created since Summer '23 ("Allow OAuth
            # Username-Password Flows" off; OauthOidcSettings.blockOAuthUnPwFlow). The exact
            # answer is not documented; the harsher, unambiguous one is modelled.
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        if form.get("client_id") != creds.consumer_key:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if form.get("client_secret") != creds.consumer_secret:
            return _oauth_error("invalid_client", "invalid client credentials")
        password = form.get("password") or ""
        if form.get("username") != creds.username or password not in (
                creds.password, creds.password + creds.security_token):
            return _oauth_error("invalid_grant", "authentication failure")
        return 200, _token(ctx)
    if grant == "client_credentials":
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:]).decode()
            except ValueError:
                return _oauth_error("invalid_client", "invalid client credentials")
            client_id, _, secret = decoded.partition(":")
        if client_id != creds.consumer_key:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if secret != creds.consumer_secret:
            return _oauth_error("invalid_client", "invalid client credentials")
        return 200, _token(ctx)
    if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
        return _jwt_bearer(ctx, form.get("assertion") or "")
    return _oauth_error("unsupported_grant_type", "grant type not supported")


def identity(ctx: SalesforceContext, token: str, org_id: str, user_id: str,
             ) -> tuple[int, Any]:
    """GET /id/{org}/{user}: the identity URL an OAuth token response points at."""
    org = ctx.sf
    if token not in org.sessions:
        return 403, "Bad_OAuth_Token"
    user = org.get("User", user_id) if org_id == org.org_id else None
    if user is None:
        return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not "
                      "exist"}]
    base = ctx.base_url
    return 200, {
        "id": f"{base}/id/{org.org_id}/{user['Id']}", "asserted_user": True,
        "user_id": user["Id"], "organization_id": org.org_id, "username": user["Username"],
        "display_name": user["Name"], "email": user["Email"], "active": user["IsActive"],
        "user_type": "STANDARD", "language": "en_US", "locale": "en_US", "utcOffset": 0,
        "urls": {"rest": f"{base}/services/data/v{{version}}/",
                 "sobjects": f"{base}/services/data/v{{version}}/sobjects/",
                 "query": f"{base}/services/data/v{{version}}/query/",
                 "limits": f"{base}/services/data/v{{version}}/limits/"},
    }


def _jwt_bearer(ctx: SalesforceContext, assertion: str) -> tuple[int, dict[str, Any]]:
    creds = ctx.sf.credentials
    try:
        # simple-salesforce sends exp as a string; Salesforce accepts that, so check it here.
        claims = jwt.decode(assertion, creds.jwt_public_key_pem, algorithms=["RS256"],
                            options={"verify_exp": False, "verify_aud": False,
                                     "verify_iat": False, "verify_nbf": False})
    except jwt.PyJWTError:
        return _oauth_error("invalid_grant", "invalid assertion")
    if claims.get("iss") != creds.consumer_key:
        return _oauth_error("invalid_client_id", "client identifier invalid")
    audiences = (*LOGIN_AUDIENCES, ctx.base_url)
    if claims.get("aud") not in audiences:
        return _oauth_error("invalid_grant", "audience is invalid")
    if claims.get("sub") != creds.username:
        return _oauth_error("invalid_grant", "user hasn't approved this consumer")
    try:
        exp = float(claims.get("exp"))   # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _oauth_error("invalid_grant", "invalid assertion")
    now = time.time()   # the client signs with its real clock, not the simulated one
    if exp < now - CLOCK_SKEW_S:
        return _oauth_error("invalid_grant", "expired authorization code")
    if exp > now + JWT_MAX_LIFETIME_S + CLOCK_SKEW_S:
        return _oauth_error("invalid_grant", "invalid assertion")
    return 200, _token(ctx, signed=False)
