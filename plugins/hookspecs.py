"""Hook specifications: the one place that says what a plugin may add.

Plugins import only `hookimpl` from here. Hooks are called with keywords. Return plain data
(dicts, lists, callables over domain objects) so plugins stay free of framework code.
"""
import pluggy

PROJECT = "zhifa"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def zhifa_presets():
    """Named jurisdiction presets: {name: {"penalty": {...}, "personnel": {...}, "registry": {...}}}."""


@hookspec
def zhifa_dept_settings(dept):
    """Per-department overrides for `dept`: {"penalty": {...}, "personnel": {...}, "registry": {...}} or None."""


@hookspec
def zhifa_crime_thresholds(dept):
    """Crime thresholds for `dept`: list of {"id", "bases": [{"law", "article"}], "measure", "threshold", "law", "name"}."""


# A case rule that never holds a finding back while the case's facts are still arriving (it does not use
# `services.penalty.domain.rules.settling_until`) declares `fn.waits_for_arrivals = False`: penalty then
# judges a case whose own waiting obligations are all met again only at its deadlines, not also when its
# arrivals settle (`rules.due_dates`). A rule without the attribute is assumed to wait.
@hookspec
def zhifa_case_rules(dept):
    """Extra case rules for `dept`: list of (rule_id, fn(case, facts, settings, as_of) -> list[Finding])."""


@hookspec
def zhifa_document_templates():
    """Document templates (文书): {doc_type: {"title": ..., "body": str.format template}}."""


@hookspec
def zhifa_payload_extensions():
    """Extra optional payload fields by event type: {event_type: {field: cerberus rule}}."""


@hookspec
def zhifa_document_files(dept):
    """DOCX templates (docxtpl, `{{ field }}` placeholders) for `dept`: {doc_type: absolute path} or None."""


# `subject`: what the document is made for, so a department can number by case type (卫健's 卫医罚 /
# 卫公罚): {"type": "case" | "handover" | "supervision" | "inspection" | "report", "id": ..., "facts": the
# document's fields, "case": the department's own penalty case as `penalty.get_case` answers it, or
# None}; None when the suite asks for the department's usual prefix. An implementation that does not
# need it leaves `subject` out of its signature (the host passes each implementation only the
# arguments it names), so plugins written for `(dept, kind)` keep working. A prefix other than the
# usual one gets its own number sequence (services/documents/domain.py `counter_id`).
@hookspec
def zhifa_document_number_prefix(dept, kind, subject):
    """The 文号 part after the county's short name for `dept`, `kind` and the document's `subject` (e.g. "市监罚"), or None."""


@hookspec
def zhifa_rules(service, dept):
    """The rules of `service` for `dept`: list of (rule_id, fn); fn None switches a rule off, a known id replaces it."""
