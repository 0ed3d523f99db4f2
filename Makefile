# llmgate: `make run` starts the gateway on :4000 with DynamoDB Local and demo models;
# `make test` runs every check CI runs.
SHELL := /bin/bash
GO ?= go
PKGS := ./...

.PHONY: run test fmt-check vet unit acceptance deps build bench synth lint deploy clean

run: ## the gateway on :4000 with DynamoDB Local and the demo config
	@scripts/run-local.sh

test: fmt-check vet unit acceptance ## gofmt check, go vet, go test -race (one DynamoDB Local for all packages), Node acceptance test

deps: ## install what the tests need (Java 17 via apt when missing, npm packages)
	@scripts/dynamodb-local.sh ensure

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

unit: deps
	scripts/with-dynamodb.sh $(GO) test -race -count=1 -timeout 10m $(PKGS)

acceptance: deps ## the Node openai SDK (acceptance/) against cmd/llmgate on DynamoDB Local
	@[ -x acceptance/node_modules/.bin/node ] || npm ci --prefix acceptance --no-audit --no-fund --loglevel=error
	cd acceptance && ../scripts/with-dynamodb.sh node_modules/.bin/node --test

bench: deps ## gateway overhead: direct vs llmgate (auth off, full path) vs Portkey; table + bench/results/*.json
	@[ -d bench/node_modules/@portkey-ai/gateway ] || npm ci --prefix bench --no-audit --no-fund --loglevel=error
	scripts/with-dynamodb.sh $(GO) run ./bench $(BENCH_FLAGS)

clean:
	rm -rf bin dist
