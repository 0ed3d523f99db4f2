# llmgate: `make run` starts the gateway on :4000 with DynamoDB Local and demo models;
# `make test` runs every check CI runs.
SHELL := /bin/bash
GO ?= go
PKGS := ./...

.PHONY: run test fmt-check vet unit acceptance deps build bench synth synth-sam sam-table lint deploy clean infra-tools test-infra

run: ## the gateway on :4000 with DynamoDB Local and the demo config
	@scripts/run-local.sh

test: fmt-check vet unit acceptance test-infra ## gofmt check, go vet, go test -race (one DynamoDB Local for all packages), infra tests

deps: ## install what the tests need (Java 17 and chromium via apt when missing, npm packages, moto for Secrets Manager tests)
	@scripts/dynamodb-local.sh ensure
	@python3 -c 'import moto.server' 2>/dev/null || python3 -m pip install --quiet 'moto[server]==5.2.1'
	@command -v chromium >/dev/null || { echo "installing chromium (console browser tests)"; \
		if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo=sudo; fi; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; }

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

unit: deps
	scripts/with-dynamodb.sh $(GO) test -race -count=1 -timeout 10m $(PKGS)

acceptance: deps ## the Node openai and Anthropic SDKs, Claude Code and Codex CLI, and the console in headless Chromium (acceptance/) against cmd/llmgate on DynamoDB Local
	@[ -x acceptance/node_modules/.bin/node ] && [ -x acceptance/node_modules/.bin/claude ] && [ -x acceptance/node_modules/.bin/codex ] && \
		[ -d acceptance/node_modules/playwright-core ] || npm ci --prefix acceptance --no-audit --no-fund --loglevel=error
	cd acceptance && ../scripts/with-dynamodb.sh node_modules/.bin/node --test

bench: deps ## gateway overhead: direct vs llmgate (auth off, full path) vs Portkey; table + bench/results/*.json
	@[ -d bench/node_modules/@portkey-ai/gateway ] || npm ci --prefix bench --no-audit --no-fund --loglevel=error
	scripts/with-dynamodb.sh $(GO) run ./bench $(BENCH_FLAGS)

bench-go: ## the gateway's Go benchmarks: overhead vs a direct call, stream TTFB, allocations, latency at 500 rps, memory per stream, full-path CPU per call
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=1x ./internal/gateway/
	$(GO) test -run '^$$' -bench 'Chat|StreamTTFB|GatewayHandler' -benchmem -benchtime=3000x ./internal/gateway/
	scripts/with-dynamodb.sh $(GO) test -run '^$$' -bench FullPath -benchmem -benchtime=2000x -cpu 2 ./internal/app/
	GOGC=400 scripts/with-dynamodb.sh $(GO) test -run '^$$' -bench FullPath -benchmem -benchtime=2000x -cpu 1 ./internal/app/ # as a Lambda function runs

# Lambda packages and the CDK app (infra/ is its own Go module; its CLI and Node 22 come from
# infra/_tools/package.json). CONFIG is the config.yaml bundled with the functions and read
# by the stack (the synth refuses a dist/ built from another one). synth-sam writes the
# buffered variant sam local needs into its own folder, which make synth leaves alone.
LAMBDAS := completions admin rotator
LAMBDA_ARCH ?= arm64
CONFIG ?= $(if $(wildcard config.yaml),config.yaml,config.example.yaml)
STREAMING ?= true
CDK_TOOLS := $(CURDIR)/infra/_tools/node_modules/.bin
CDK := cd infra && PATH="$(CDK_TOOLS):$$PATH" cdk
CDK_CONTEXT = -c configPath=$(abspath $(CONFIG)) -c streaming=$(STREAMING)

build: ## bootstrap (linux/arm64) + config.yaml per function in dist/<fn>/, zipped as dist/<fn>.zip
	@rm -rf dist && mkdir -p dist
	@for fn in $(LAMBDAS); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w" \
			-o dist/$$fn/bootstrap ./functions/$$fn || exit 1; \
		cp $(CONFIG) dist/$$fn/config.yaml; \
		(cd dist/$$fn && zip -q -X ../$$fn.zip bootstrap config.yaml) || exit 1; \
		printf '%-12s bootstrap %6s KiB   zip %6s KiB\n' $$fn \
			$$(( $$(stat -c %s dist/$$fn/bootstrap) / 1024 )) $$(( $$(stat -c %s dist/$$fn.zip) / 1024 )); \
	done; echo "bundled config: $(CONFIG)"

infra-tools: infra/_tools/node_modules/.bin/cdk
infra/_tools/node_modules/.bin/cdk: infra/_tools/package.json infra/_tools/package-lock.json
	npm ci --prefix infra/_tools --no-audit --no-fund --loglevel=error
	@touch $@

synth: build infra-tools ## CloudFormation template in infra/cdk.out
	$(CDK) synth $(CDK_CONTEXT) --quiet
	@ls infra/cdk.out/*.template.json

# SAM_OUT (relative to infra/) is where synth-sam writes; samconfig.toml reads it from there.
SAM_OUT := sam.out
# DynamoDB Local for sam local: infra/sam-env.json points the functions at this port and table.
SAM_DYNAMODB_PORT := 8000
SAM_TABLE := llmgate-local

synth-sam: build infra-tools ## the buffered template for sam local, in infra/sam.out (CONFIG=config.demo.yaml for the mock models)
	$(CDK) synth -c configPath=$(abspath $(CONFIG)) -c streaming=false --output $(SAM_OUT) --quiet
	@ls infra/$(SAM_OUT)/*.template.json

sam-table: ## DynamoDB Local on :8000 (left running; its PID is printed) with the table sam local uses
	scripts/dynamodb-local.sh start $(SAM_DYNAMODB_PORT)
	LLMGATE_DYNAMODB_ENDPOINT=http://127.0.0.1:$(SAM_DYNAMODB_PORT) LLMGATE_TABLE=$(SAM_TABLE) \
		$(GO) run ./cmd/llmgate --config $(CONFIG) --create-table

deploy: build infra-tools ## cdk deploy into the account/region of your AWS credentials (DEPLOY_FLAGS=...)
	$(CDK) deploy $(CDK_CONTEXT) $(DEPLOY_FLAGS)

# W3005: CDK's Function declares DependsOn on its role next to a GetAtt of it (harmless).
lint: vet synth ## go vet, then cfn-lint on the synthesized template
	cfn-lint --ignore-checks W3005 -- infra/cdk.out/*.template.json

test-infra: infra-tools ## CDK assertions, cdk-nag AwsSolutions, cfn-lint (go test in infra/)
	cd infra && export PATH="$(CDK_TOOLS):$$PATH" && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

clean:
	rm -rf bin dist
