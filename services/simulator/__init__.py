"""County simulator (县域模拟器) and benchmark.

- `generator`: a deterministic, realistic year of one county's enforcement facts (envelopes) with
  injected rule breaches and their ground truth.
- `truth`: the findings the suite must raise for a simulation at a given `as_of`.
- `publish`: the simulation through the real ingress (AMQP with publisher confirms, or HTTP).
- `report`: collect what the suite raised (or what the pure domains raise offline) and compare
  with the truth per rule.
- `bench`: throughput, latency, memory and the machine's raw ceiling (`python -m services.simulator.bench`).
"""
