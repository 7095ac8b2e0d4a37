# Two commands for a newcomer: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.herald-installed
# Every Python dependency's exact version (see its header; `make lock` remakes it).
LOCK := requirements.lock
# The PostgreSQL run of the suite; each run works in a schema of its own.
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install demo test test-sqlite test-postgres lint audit lock vendor clean catalogs translations

install: $(STAMP) static/vendor/.copied catalogs

# Translations are compiled (.po to .mo) at install time; only the .po files are kept in git.
catalogs: $(STAMP)
	@if ls portal/translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
	  $(BIN)/pybabel compile --statistics -d portal/translations 2>&1 | grep -v '^$$' || true; fi

# After changing user-visible text: collect every marked string into messages.pot, then merge
# it into each language's .po (new strings arrive empty; tests fail until they are translated).
TRANSLATED_LANGUAGES := nl es
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l --add-comments=Translators: \
	  --project=Herald -o portal/translations/messages.pot .
	@for lang in $(TRANSLATED_LANGUAGES); do \
	  if [ -f portal/translations/$$lang/LC_MESSAGES/messages.po ]; then \
	    $(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete -l $$lang \
	      -i portal/translations/messages.pot -d portal/translations; \
	  else \
	    $(BIN)/pybabel init -l $$lang -i portal/translations/messages.pot -d portal/translations; \
	  fi; done

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[test]'
	touch $@

# Resolve pyproject.toml's dependencies afresh (newest allowed versions) in a throw-away
# environment and record the result; tests/test_dependency_lock.py checks the two agree.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[test]'
	{ sed -n '/^#/p' $(LOCK); .lock-venv/bin/pip freeze --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# Front-end files come from npm at install time and are never committed.
# axe-core is for the browser tests only: copied next to them, never served by the app.
static/vendor/.copied: node_modules/.package-lock.json
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/
	cp node_modules/@picocss/pico/css/pico.min.css static/vendor/
	mkdir -p tests/browser/vendor
	cp node_modules/axe-core/axe.min.js tests/browser/vendor/
	touch $@

vendor: static/vendor/.copied

demo: install
	$(BIN)/herald demo

test: install
	$(MAKE) --no-print-directory test-sqlite test-postgres

# pytest exits 5 when it collected no test: say so plainly, and fail.
PYTEST = $(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$status

test-sqlite: install
	@echo "== test suite on SQLite =="
	@$(PYTEST)

test-postgres: install
	@echo "== test suite on PostgreSQL ($(TEST_POSTGRES_URL)) =="
	@export HERALD_TEST_DATABASE_URL='$(TEST_POSTGRES_URL)'; $(PYTEST)

lint: install
	$(BIN)/ruff check .

# Known vulnerabilities in the locked dependencies (needs PyPI's vulnerability data or OSV:
# not part of CI, which runs offline). --strict fails when a package could not be checked,
# so an unreachable service is never reported as "no known vulnerabilities".
audit: install
	$(BIN)/pip install -q pip-audit
	$(BIN)/pip-audit --strict --progress-spinner off --no-deps -r $(LOCK) $(AUDIT_ARGS)

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache
