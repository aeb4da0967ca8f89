# Zhifa (执法) - developer entry points. `make help` lists them.
#
# Everything runtime lives under .run/ (gitignored): .run/bin, .run/build, .run/stamps and
# .run/<profile>/{rabbitmq,ferretdb,logs,pids} for the profiles `run` and `test` (and `chaos`, `make chaos` only;
# `bench`, backend comparisons; `pg` beside ferretdb when ZHIFA_FERRETDB_BACKEND=postgresql).
# All set-up is idempotent: a second `make test` does no apt, no go build and no pip.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PROFILE     ?= run
PYTEST_ARGS ?=
RUN_ARGS    ?=
BENCH_ARGS  ?=
PY          := .venv/bin/python

.PHONY: help bootstrap venv constraints rabbitmq ferretdb browser-deps run test chaos bench monitor \
        infra-up infra-down infra-status stop clean-data distclean check-infra

help:
	@echo "Zhifa make targets"
	@echo "  make run            bootstrap, start RabbitMQ :5672 (mgmt :15672) + FerretDB :27017, run the suite"
	@echo "                      (services.launcher); Ctrl-C stops it and the servers it started"
	@echo "  make test           bootstrap, start test servers (:5682/:15682/:27027), pytest \$$(PYTEST_ARGS)"
	@echo "                      test servers stay up for the next run unless CI=true"
	@echo "  make chaos          fault tests with figures (kills, 60 s database outage, RabbitMQ restarted) on"
	@echo "                      servers of their own (:5702/:15722/:27037, .run/chaos); CHAOS_EVENTS=20000"
	@echo "                      CHAOS_KILLS=10 CHAOS_DB_OUTAGE_S=60 CHAOS_BROKER_BACKLOG=3000; figures in"
	@echo "                      .run/chaos-figures.json"
	@echo "  make bench          bootstrap, run-profile servers, python -m services.simulator.bench \$$(BENCH_ARGS)"
	@echo "  make monitor        Debian Prometheus on :9090 scraping the running suite (make run), alert rules loaded"
	@echo "  make bootstrap      venv + rabbitmq-server + patched FerretDB (idempotent)"
	@echo "  make constraints    write constraints.txt (the tested Python package versions) from .venv"
	@echo "  make browser-deps   Debian chromium for browser tests (Playwright executable_path=/usr/bin/chromium)"
	@echo "  make infra-up       start servers of PROFILE=run|test and print export lines (eval them)"
	@echo "  make infra-down     stop servers of PROFILE=run|test"
	@echo "  make infra-status   show both profiles"
	@echo "  make stop           stop both profiles' servers"
	@echo "  make clean-data     stop, then delete both profiles' FerretDB and RabbitMQ data"
	@echo "  make distclean      stop, then delete .run and .venv"
	@echo "  make check-infra    syntax-check docker-compose, Prometheus, Grafana files"

bootstrap:
	@scripts/bootstrap.sh

venv:
	@scripts/bootstrap.sh venv

constraints: venv
	@scripts/constraints.sh

rabbitmq:
	@scripts/bootstrap.sh rabbitmq

ferretdb:
	@scripts/bootstrap.sh ferretdb

browser-deps:
	@scripts/bootstrap.sh browser

run:
	@scripts/run.sh $(RUN_ARGS)

test:
	@scripts/test.sh $(PYTEST_ARGS)

# its own RabbitMQ node and FerretDB (profile chaos, .run/chaos/): the test stops and starts the node;
# both are stopped afterwards
chaos:
	@scripts/with-infra.sh chaos -- .venv/bin/python -m pytest -m chaos -s -q tests/integration/test_hostile_chaos.py

bench:
	@scripts/bench.sh $(BENCH_ARGS)

monitor:
	@scripts/bootstrap.sh venv monitor
	@eval "$$(scripts/infra.sh env run)" && $(PY) -m services.monitor

infra-up:
	@scripts/bootstrap.sh rabbitmq ferretdb
	@scripts/infra.sh up $(PROFILE)

infra-down:
	@scripts/infra.sh down $(PROFILE)

infra-status:
	@scripts/infra.sh status run; scripts/infra.sh status test; scripts/infra.sh status chaos; scripts/infra.sh status bench

stop:
	@scripts/infra.sh down run; scripts/infra.sh down test; scripts/infra.sh down chaos; scripts/infra.sh down bench

clean-data: stop
	rm -rf .run/run/ferretdb .run/test/ferretdb .run/chaos/ferretdb .run/run/rabbitmq/mnesia .run/test/rabbitmq/mnesia \
	       .run/chaos/rabbitmq/mnesia .run/bench/ferretdb .run/bench/rabbitmq/mnesia .run/*/pg

distclean: stop
	rm -rf .run .venv

check-infra: venv
	@$(PY) scripts/check_infra.py
