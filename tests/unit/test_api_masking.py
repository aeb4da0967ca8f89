"""Masking of a party's personal data anywhere in an answer, and who sees it in full."""
from services.api.masking import mask, mask_value, sees_personal

CASE = {
    "case_id": "c1", "dept": "511322-scjg",
    "party": {"type": "person", "id": "513022199001011234", "name": "王五", "phone": "13800001234",
              "address": "四川省南充市营山县朗池镇幸福街8号"},
    "facts": [{"type": "case.filed", "payload": {"party": {"type": "org", "id": "91511322MA3C4X0001", "name": "某公司"}}},
              {"type": "case.investigated", "payload": {"text": "现场检查"}}],
    "parties": [{"id": "110101199003077777", "name": "赵六"}],
    "case": {"party_id": "513022199001011234", "party_ids": ["91511322MA3C4X0001"]},
}


def test_every_party_is_masked_including_fact_payloads_and_lists():
    masked, found = mask(CASE)
    text = str(masked)
    assert found
    for secret in ("513022199001011234", "13800001234", "幸福街8号", "91511322MA3C4X0001", "110101199003077777"):
        assert secret not in text
    assert masked["party"]["id"] == "51" + "*" * 14 + "34"
    assert masked["party"]["phone"] == "138******34"
    assert masked["party"]["address"] == "四川省南充市****"
    assert masked["party"]["name"] == "王五" and masked["facts"][1] == CASE["facts"][1]
    assert CASE["party"]["id"] == "513022199001011234"  # the original is untouched


def test_answers_without_parties_are_unchanged():
    doc = {"items": [{"officer_id": "o1", "id": "not a party field"}], "total": 1}
    assert mask(doc) == (doc, False)
    assert mask({"party": None}) == ({"party": None}, False)
    assert mask_value("id", "1234") == "****"


def test_a_party_named_as_a_subject_is_masked_and_an_officer_is_not():
    signals = {"items": [{"subject_type": "party", "subject_id": "91511322MA0000001X", "count": 3},
                         {"subject_type": "officer", "subject_id": "511322-scjg-0101", "count": 2}]}
    masked, found = mask(signals)
    assert found
    assert masked["items"][0]["subject_id"] == "91" + "*" * 14 + "1X"
    assert masked["items"][1]["subject_id"] == "511322-scjg-0101"


def test_only_a_department_user_of_the_owning_department_sees_personal_data():
    assert sees_personal("dept_user", "511322-scjg", {"511322-scjg"})
    assert not sees_personal("dept_user", "511322-scjg", {"511322-scjg", "511322-sthj"})
    assert not sees_personal("dept_user", "511322-scjg", set())
    for role in ("supervisor", "auditor", "operator", "public"):
        assert not sees_personal(role, None, {"511322-scjg"})
