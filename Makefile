# Two commands do all the set-up on a fresh clone: `make run` and `make test`.
# Each creates the virtual environment in .venv on first use (and again when pyproject.toml changes).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run sync check test fake-humalike fake-chat-model bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

run: $(VENV)/.installed   ## start the bot (reads .env)
	$(BIN)/python -m bot

sync: $(VENV)/.installed  ## start the bot and publish its slash commands globally first
	$(BIN)/python -m bot --sync

check: $(VENV)/.installed  ## verify .env without starting the bot
	$(BIN)/python -m bot check

test: $(VENV)/.installed-test  ## lint and run every test, offline
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

fake-humalike: $(VENV)/.installed-test  ## a fake Humalike on http://127.0.0.1:8765 (token: test-token)
	$(BIN)/python -m tests.fakes.humalike --port 8765

fake-chat-model: $(VENV)/.installed-test  ## a fake OpenAI-compatible chat model on http://127.0.0.1:8766/v1
	$(BIN)/python -m tests.fakes.chat_model --port 8766

bench: $(VENV)/.installed-test  ## print what following 1,000 jobs costs in CPU
	$(BIN)/python -m bench.poll_cost
