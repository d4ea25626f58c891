# One entry point for people and CI. Everything installs into .venv; nothing is fetched at run time.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
VENDOR := app/static/vendor
export FEEDLOOP_HOME ?= $(CURDIR)/instance
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install chromium demo test bench serve clean

install: $(STAMP) $(VENDOR)/.installed

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of torch first: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,int8]'
	touch $@

$(VENDOR)/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)/swagger-ui $(VENDOR)/htmx $(VENDOR)/pico $(VENDOR)/chart
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css $(VENDOR)/swagger-ui/
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx/
	cp node_modules/@picocss/pico/css/pico.min.css $(VENDOR)/pico/
	cp node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)/chart/
	touch $@

demo: install
	$(BIN)/feedloop init
	$(BIN)/feedloop items import demo/catalogue.jsonl
	@echo
	@echo "Demo API key (shown once, keep it):"
	@$(BIN)/feedloop keys create --name "demo $$(date +%Y-%m-%dT%H:%M:%S)" | tail -n 1
	@echo
	@echo "feedloop is starting on http://127.0.0.1:5000"
	@echo "  pages:     http://127.0.0.1:5000/login  (first: $(BIN)/feedloop users create you@example.org --role admin)"
	@echo "  API docs:  http://127.0.0.1:5000/api/v1/docs"
	@echo "  health:    http://127.0.0.1:5000/healthz"
	@echo "  try:       curl -H 'Authorization: Bearer KEY' 'http://127.0.0.1:5000/api/v1/search?q=pasta&k=5'"
	@echo
	$(BIN)/feedloop serve --host 127.0.0.1 --port 5000

# The browser tests drive Debian's chromium; install it when missing (as root), else they skip and say why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; }; } || echo "warning: chromium could not be installed; the browser tests will be skipped"

test: install chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n auto

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,int8,bench]'
	touch $@

bench: install $(BENCH_STAMP)
	$(BIN)/python -m tests.bench.run

clean:
	rm -rf $(VENV) node_modules $(VENDOR) instance
