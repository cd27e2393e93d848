# gridgov — the two commands a newcomer needs: `make demo` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
GRIDGOV := $(BIN)/gridgov
SCALE   ?= 100000

.PHONY: demo setup test install system db demo-data serve clean bench lint

demo: setup  ## install, start PostGIS, load the demo district, serve and print the address and logins
	@$(GRIDGOV) demo users --table
	@$(GRIDGOV) serve

setup: install system db demo-data  ## everything but serving; a second run is quick and changes nothing

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

system:
	@scripts/system-packages.sh

db: install system
	@$(GRIDGOV) db up
	@$(GRIDGOV) db migrate

demo-data: db
	@$(GRIDGOV) demo load --scale $(SCALE) --if-missing

serve: install
	@$(GRIDGOV) serve

test: install  ## the whole suite from a fresh clone (installs PostGIS and Chromium if missing)
	@scripts/system-packages.sh --browser
	$(BIN)/pytest -q --ignore=tests/ui
	@# Each browser module in a process of its own, as in production (one process serving one app):
	@# Panel/Bokeh keep session state process-wide, and a dozen test servers in one process interfered.
	@set -e; for module in tests/ui/test_*.py; do echo "$$module"; $(BIN)/pytest -q $$module; done

lint: install
	$(BIN)/ruff check gis layers dashboards etl tests bench

bench: db
	$(BIN)/python bench/bench_demo_load.py --scale 1000000

clean:
	-@$(GRIDGOV) db down
	rm -rf var/test
