"""The error tree's structured form: callers add context without colliding with the error."""

from syncagent.errors import AuthError


def test_context_never_collides_with_an_errors_own_system_field() -> None:
    """A FatalError that carries `system` used to become KeyError when a caller logged it with
    its own `system=`; the error's own fields win and nothing raises."""
    error = AuthError("login refused", system="salesforce", flow="jwt")
    data = error.as_dict(system="hubspot", stream="Lead")
    assert data["system"] == "salesforce"
    assert data["stream"] == "Lead"
    assert data["error"] == "AuthError"
    assert data["message"] == "login refused"


def test_an_error_cannot_overwrite_its_own_class_name_or_message() -> None:
    error = AuthError("login refused", error="spoof")
    data = error.as_dict()
    assert (data["error"], data["message"]) == ("AuthError", "login refused")
