# Two commands do everything on a fresh machine:
#   make demo   set up (if needed) and run the simulated learning demo
#   make test   set up (if needed) and run the test suite
# Set-up (scripts/setup.sh) is idempotent: a second run with nothing to do takes seconds.
SHELL := /bin/bash
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup test demo clean distclean

setup:
	@bash scripts/setup.sh

# GRASP_TEST_DEPS=1: also the test-only system packages (Chromium, where the distribution packages it).
test:
	@GRASP_TEST_DEPS=1 bash scripts/setup.sh
	@scripts/in_env.sh python -m pytest $(PYTEST_ARGS)

demo: setup
	@scripts/in_env.sh python -m grasp_bringup.demo $(DEMO_ARGS)

clean:
	rm -rf build install log

distclean: clean
	rm -rf .venv
