"""The gateway-only bench's reading of a /metrics page (services/simulator/bench_gateway.py)."""
from services.simulator.bench_gateway import accepted, gateway_commands, per_event

PAGE = """# HELP zhifa_ingress_accepted_total Events accepted
zhifa_ingress_accepted_total{channel="amqp",dept="511322-scjg",event_type="officer.registered"} 40.0
zhifa_ingress_accepted_total{channel="http",dept="511322-sthj",event_type="case.filed"} 2.0
zhifa_ingress_duplicates_total{channel="amqp",dept="511322-scjg"} 5.0
zhifa_db_commands_total{collection="accepted",command="insert",service="gateway"} 3.0
zhifa_db_commands_total{collection="accepted",command="find",service="gateway"} 1.0
zhifa_db_commands_total{collection="cases",command="find",service="penalty"} 9.0
"""


def test_accepted_adds_every_channel_department_and_type_and_nothing_else():
    assert accepted(PAGE) == 42.0


def test_only_the_gateways_commands_by_collection_and_command():
    assert gateway_commands(PAGE) == {"accepted.insert": 3.0, "accepted.find": 1.0}


def test_per_event_is_the_growth_divided_by_the_events():
    before = {"accepted.insert": 1.0}
    after = {"accepted.insert": 3.0, "accepted.find": 1.0, "quarantine.insert": 0.0}
    assert per_event(before, after, 4) == {"accepted.find": 0.25, "accepted.insert": 0.5}
