"""Parameters parsed and checked against their declarations: every failure names the field and rule."""
import pytest

from services.api.params import ParamError, parse
from services.kernel.manifest import Param

PARAMS = (
    Param("dept", max_length=40, pattern=r"\d{6}-[a-z][a-z0-9]{1,15}"),
    Param("status", enum=("active", "left")),
    Param("limit", "integer", minimum=1, maximum=500, default=50),
    Param("overdue", "boolean"),
    Param("on", "date"),
    Param("at", "date-time"),
    Param("code", in_="path", required=True, max_length=8),
    Param("params", "object", in_="body"),
)


def run(query=None, path=None, body=None):
    return parse(PARAMS, path={"code": "C1"} if path is None else path, query={k: [v] for k, v in (query or {}).items()}, body=body)


def refused(**kwargs) -> ParamError:
    with pytest.raises(ParamError) as exc:
        run(**kwargs)
    return exc.value


def test_values_are_converted_and_defaults_filled():
    out = run({"dept": "511322-scjg", "limit": "20", "overdue": "true", "on": "2024-02-29",
               "at": "2024-08-01T09:00:00+08:00"}, body={"params": {"x": 1}})
    assert out == {"dept": "511322-scjg", "status": None, "limit": 20, "overdue": True, "on": "2024-02-29",
                   "at": "2024-08-01T09:00:00+08:00", "code": "C1", "params": {"x": 1}}
    assert run()["limit"] == 50 and run({"limit": ""})["limit"] == 50


@pytest.mark.parametrize("query,field,code", [
    ({"limit": "abc"}, "limit", "invalid_type"),
    ({"limit": "1e3"}, "limit", "invalid_type"),
    ({"limit": "0"}, "limit", "minimum"),
    ({"limit": "501"}, "limit", "maximum"),
    ({"limit": "9" * 40}, "limit", "invalid_type"),
    ({"status": "dead"}, "status", "enum"),
    ({"dept": "511322-SCJG"}, "dept", "pattern"),
    ({"dept": "511322-scjg\n"}, "dept", "forbidden_char"),
    ({"dept": "x" * 41}, "dept", "max_length"),
    ({"overdue": "maybe"}, "overdue", "invalid_type"),
    ({"on": "2024-02-30"}, "on", "invalid_date"),
    ({"at": "2024-08-01T09:00:00"}, "at", "invalid_datetime"),
    ({"at": "9999-12-31T23:59:59Z"}, "at", "invalid_datetime"),
    ({"nope": "1"}, "nope", "unknown_param"),
    ({"code": "C1"}, "code", "unknown_param"),
])
def test_bad_query_values_name_field_and_rule(query, field, code):
    err = refused(query=query)
    assert (err.field, err.code, err.status) == (field, code, 400)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err.message)
    assert err.to_dict() == {"code": code, "field": field, "message": err.message}


def test_path_body_and_repetition():
    assert refused(path={}).code == "required"
    assert refused(path={"code": "123456789"}).code == "max_length"
    assert refused(body={"params": [1]}).code == "invalid_type"
    assert refused(body={"other": 1}).code == "unknown_param"
    with pytest.raises(ParamError) as exc:
        parse(PARAMS, path={"code": "C1"}, query={"limit": ["1", "2"]}, body=None)
    assert exc.value.code == "repeated"
    # booleans are not integers
    with pytest.raises(ParamError):
        parse((Param("n", "integer", in_="body"),), path={}, query={}, body={"n": True})


def test_strings_are_nfc_normalised():
    assert parse((Param("q"),), path={}, query={"q": ["e\u0301"]}, body=None)["q"] == "\u00e9"
