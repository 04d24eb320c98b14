# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test soak docs bench bench-day bench-serve profile lint clean validate-real validate-real-long

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

# the light install runs compare/run/trace/privsep/serve; the extras add the rest
# (test = sweep + notebooks + docs + the test tools)
$(VENV)/.test-installed: pyproject.toml $(VENV)/.installed
	$(PIP) install -e '.[test]'
	@touch $@

$(VENV)/.docs-installed: pyproject.toml $(VENV)/.installed
	$(PIP) install -e '.[docs]'
	@touch $@

$(VENV)/.sweep-installed: pyproject.toml $(VENV)/.installed
	$(PIP) install -e '.[sweep]'
	@touch $@

# the hot path compiled with mypyc (model/smtpd_sim/native.py lists the modules); pure Python
# when that cannot be built. Any change to one of them rebuilds.
NATIVE_SRC := $(addprefix model/,$(shell sed -n 's/^ *"\(smtpd_sim\/[^"]*\.py\)",$$/\1/p' model/smtpd_sim/native.py)) \
	model/smtpd_sim/native.py
$(VENV)/.native: $(VENV)/.installed $(NATIVE_SRC)
	@echo "compiling the hot path with mypyc (about 3 minutes, once)..."
	@$(PIP) install -e '.[native]' && $(BIN)/smtpd-sim native build >$(VENV)/native-build.log 2>&1 \
		&& $(BIN)/smtpd-sim native status \
		|| echo "smtpd-sim: the mypyc build failed (see $(VENV)/native-build.log); running in pure Python"
	@touch $@

## run: the headline comparison of the four eras on the embedded default scenario, and the
## teaching page built from the same model (open results/explorer.html in a browser)
run: $(VENV)/.installed $(VENV)/.native
	$(BIN)/smtpd-sim compare --plot results/compare.png
	$(BIN)/smtpd-sim explore --out results/explorer.html

# the explorer's browser tests drive Debian's chromium (never a downloaded browser): installed
# with apt when absent and we are root; elsewhere they skip (and fail under
# SMTPD_SIM_REQUIRE_BROWSER=1, which .ci/run sets). The stamp is made once chromium is there.
$(VENV)/.chromium: | $(BIN)/python
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (apt) for the explorer's browser tests..."; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q chromium >/dev/null 2>&1 \
			|| { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } \
			|| echo "smtpd-sim: could not install chromium: the browser tests will skip"; \
	fi
	@if command -v chromium >/dev/null 2>&1; then touch $@; fi

## test: the rooms' import contracts, then the whole suite (unit, property, browser, notebooks)
test: $(VENV)/.test-installed $(VENV)/.native $(VENV)/.chromium
	$(BIN)/lint-imports
	$(BIN)/python -m pytest tests $(if $(wildcard notebooks/*.ipynb),--nbmake notebooks)
	$(MAKE) docs

## docs: the docs site into site/ (mkdocs build --strict: a broken link, a missing page or a
## docstring mkdocstrings cannot read fails it); notebooks shown with their committed outputs
docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## soak: the fault-schedule property with many more examples than `make test` (5000 small
## runs with crashes and every fault kind: nothing lost, nothing delivered twice but crash
## redeliveries; about 13 minutes in pure Python)
soak: $(VENV)/.test-installed $(VENV)/.native
	SMTPD_SIM_SOAK=1 $(BIN)/python -m pytest tests/sim/test_faults.py --hypothesis-show-statistics

## validate-real: the real OpenSMTPD 6.8.0p2 (Debian package, installed if absent) on
## loopback in a network namespace vs smtpd-sim, same clients (needs root)
validate-real: $(VENV)/.test-installed
	$(BIN)/smtpd-sim real validate
	$(BIN)/python -m pytest -m real tests/real -k "not long"

## validate-real-long: also the retry scenarios (sink down 430 s, broken maildir 100 s: ~20 min)
validate-real-long: $(VENV)/.test-installed
	$(BIN)/smtpd-sim real validate --long
	SMTPD_SIM_REAL_LONG=1 $(BIN)/python -m pytest -m real tests/real

## bench: speed against bare SimPy, measured in the same run; sweep points/s on 1 and 2 workers
bench: $(VENV)/.sweep-installed $(VENV)/.native
	$(BIN)/python benchmarks/bench_speed.py
	$(BIN)/python benchmarks/bench_sweep.py --repeat 3

## bench-day: one simulated day of a 100 msg/s MX (benchmarks/day.toml: the default 6.8 site,
## 80 % local / 20 % relay to five domains, 1-3 recipients, 3 % tempfail), streaming: slices of
## 1k, 100k and 1M messages, the day extrapolated when the cost per message is flat; peak RSS
bench-day: $(VENV)/.installed $(VENV)/.native
	$(BIN)/python benchmarks/bench_day.py

## profile: where the CPU goes on the `make bench` load (py-spy, sampling), top functions
profile: $(VENV)/.installed $(VENV)/.native
	$(PIP) install -e '.[profile]'
	@mkdir -p results
	$(BIN)/py-spy record --format raw -r 200 -o results/profile.txt -- $(BIN)/python benchmarks/profile_speed.py 10000
	$(BIN)/python benchmarks/profile_summary.py results/profile.txt --within Environment.run

## bench-serve: `smtpd-sim serve` under 200..2000 concurrent clients, durable queue vs --ephemeral:
## messages/s and the most clients held with nothing lost (minutes; every core)
bench-serve: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_serve.py

lint: $(VENV)/.test-installed
	$(BIN)/ruff check model tests benchmarks extras

clean:
	-$(BIN)/smtpd-sim native clean
	rm -rf $(VENV) results .pytest_cache build model/build site
