# Convenience targets; each is one script you can also run directly.
SERVICES ?= identity
.PHONY: up test conformance smoke bench-identity lint

up:            ## install (if needed) and start the all-in-one cloud
	./scripts/up.sh $(ARGS)

test:          ## the whole test suite (what CI runs)
	./scripts/test.sh

conformance:   ## Tempest against a fresh kumo; results in conformance/results/
	./install.sh && python3 conformance/run.py --services $(SERVICES)

smoke:         ## the openstack CLI path a new user runs, against a fresh kumo
	./install.sh && python3 conformance/run.py --smoke --services $(SERVICES)

bench-identity: ## kumo vs upstream Keystone, side by side
	./install.sh && python3 bench/identity.py

lint:
	.venv/bin/ruff check kumo tests conformance bench && .venv/bin/lint-imports
