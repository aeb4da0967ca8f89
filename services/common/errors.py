"""Named domain errors with one error-code vocabulary. Rules raise these, never assert.

Every refusal a domain can give carries a machine-readable `code` from `ERROR_CODES`, the
`field` that broke the rule (dotted, e.g. `payload.valid_to`) and a Chinese message. The kernel
turns a DomainError met while applying a department's fact into a PoisonMessage, so the fact is
dead-lettered at once and its publisher gets a `refused` notice with these three parts.
"""
from __future__ import annotations

# code -> what it means (the vocabulary is closed: a test checks every error class uses one of these)
ERROR_CODES: dict[str, str] = {
    "domain_error": "业务规则不允许",
    "invalid_fact": "事实内容本身不成立（日期无效、有效期倒置等）",
    "invalid_value": "参数或字段取值不合法",
    "naive_datetime": "时间缺少时区",
    "not_found": "所指对象不存在",
    "illegal_transition": "当前状态下不允许该操作",
    "not_owner": "事实或操作所涉对象属于其他部门",
    "not_addressee": "该环节只能由案件移送（抄送）到的公安机关、检察院报送",
    "wrong_aggregate": "事实被送到了不属于它的对象（系统接线错误）",
    "unsupported_fact": "该服务不处理此类事实",
    "item_mismatch": "事实所涉事项与对象不一致",
    "invalid_standard": "裁量基准不符合要求",
    "standard_not_found": "无有效的裁量基准",
    "unknown_tier": "裁量阶次不存在",
    "registry_error": "执法事项清单不接受该事实",
    "invalid_at": "时间参数无效",
}


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

    def violations(self) -> list[dict]:
        """The refusal as structured violations (field, rule, message), like a contract rejection's."""
        return [{"field": self.field, "rule": self.code, "message": str(self)}]


class IllegalTransitionError(DomainError):
    code = "illegal_transition"


class NotFoundError(DomainError):
    code = "not_found"


class InvalidFactError(DomainError):
    """A fact whose own content is impossible (bad date, validity ending before it starts)."""

    code = "invalid_fact"


class NaiveTimeError(DomainError):
    """A time without a zone: the domain reckons in China time and cannot guess."""

    code = "naive_datetime"


class NotOwnerError(DomainError):
    """A fact or command about a subject (officer, agency, item, case…) owned by another department."""

    code = "not_owner"

    def __init__(self, message: str, *, owner: str | None = None, field: str | None = "dept"):
        super().__init__(message, field=field)
        self.owner = owner
