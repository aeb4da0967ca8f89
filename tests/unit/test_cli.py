"""`zhifa` CLI without a server: the same file always gives the same events (issue 8 §4)."""
import io
import json

from services import cli

DEPT = "511322-scjg"


def _file(tmp_path, events):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in events) + "\n", encoding="utf-8")
    return str(path)


def _validate(path):
    out = io.StringIO()
    code = cli.main(["validate", path, "--dept", DEPT, "--json"], out=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


EVENT = {"type": "officer.registered", "occurred_at": "2026-03-01T09:00:00+08:00",
         "payload": {"officer_id": "511322-scjg-0009", "name": "王芳", "agency_id": "A1", "kind": "officer"}}


def test_an_event_without_id_gets_the_same_id_on_every_run(tmp_path):
    path = _file(tmp_path, [EVENT, {**EVENT, "payload": {**EVENT["payload"], "name": "李明"}}])
    code, first = _validate(path)
    _, second = _validate(path)
    assert code == 0 and [r["status"] for r in first] == ["valid", "valid"]
    assert [r["event_id"] for r in first] == [r["event_id"] for r in second]
    assert first[0]["event_id"] != first[1]["event_id"]     # different content, different id
    assert first[0]["event_id"] == cli.content_event_id(EVENT, DEPT, f"{DEPT}-system")


def test_a_missing_occurred_at_is_an_error_not_now(tmp_path):
    bare = {k: v for k, v in EVENT.items() if k != "occurred_at"}
    code, [row] = _validate(_file(tmp_path, [bare]))
    assert code == 1 and row["status"] == "invalid"
    assert row["violations"][0]["field"] == "occurred_at" and row["violations"][0]["rule"] == "required"


def test_given_ids_are_kept(tmp_path):
    code, [row] = _validate(_file(tmp_path, [{**EVENT, "event_id": "my-system-42"}]))
    assert row["event_id"] == "my-system-42"
