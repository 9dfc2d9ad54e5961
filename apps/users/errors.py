"""Every domain error of the users context, each with a stable ``code``.

``interface.py`` re-exports the ones other contexts may catch; the problem
handler (apps.core.problems) turns any of them into problem+json.
"""

from apps.core.errors import AuthenticationFailed, Conflict, NotFound


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "User not found"


class EmailAlreadyRegistered(Conflict):
    code = "email_taken"
    title = "Email already registered"


class InvalidCredentials(AuthenticationFailed):
    code = "invalid_credentials"
    title = "Invalid credentials"
