"""Named domain errors. Rules raise these, never assert."""


class DomainError(Exception):
    """A command or fact the domain refuses; `code` is machine-readable, the message is Chinese."""

    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        if code:
            self.code = code
        self.field = field

    def to_dict(self) -> dict:
        return {"code": self.code, "field": self.field, "message": str(self)}


class IllegalTransitionError(DomainError):
    code = "illegal_transition"


class NotFoundError(DomainError):
    code = "not_found"
