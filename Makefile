# llmgate: `make run` starts the gateway on :4000 with DynamoDB Local and demo models;
# `make test` runs every check CI runs.
SHELL := /bin/bash
GO ?= go
PKGS := ./...

.PHONY: run test fmt-check vet unit acceptance deps build bench synth lint deploy clean infra-tools test-infra

run: ## the gateway on :4000 with DynamoDB Local and the demo config
	@scripts/run-local.sh

test: fmt-check vet unit acceptance test-infra ## gofmt check, go vet, go test -race (one DynamoDB Local for all packages), infra tests

deps: ## install what the tests need (Java 17 via apt when missing, npm packages, moto for Secrets Manager tests)
	@scripts/dynamodb-local.sh ensure
	@python3 -c 'import moto.server' 2>/dev/null || python3 -m pip install --quiet 'moto[server]==5.2.1'

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

unit: deps
	scripts/with-dynamodb.sh $(GO) test -race -count=1 -timeout 10m $(PKGS)

acceptance: deps ## the Node openai and Anthropic SDKs, Claude Code and Codex CLI (acceptance/) against cmd/llmgate on DynamoDB Local
	@[ -x acceptance/node_modules/.bin/node ] && [ -x acceptance/node_modules/.bin/claude ] && [ -x acceptance/node_modules/.bin/codex ] || \
		npm ci --prefix acceptance --no-audit --no-fund --loglevel=error
	cd acceptance && ../scripts/with-dynamodb.sh node_modules/.bin/node --test

bench: deps ## gateway overhead: direct vs llmgate (auth off, full path) vs Portkey; table + bench/results/*.json
	@[ -d bench/node_modules/@portkey-ai/gateway ] || npm ci --prefix bench --no-audit --no-fund --loglevel=error
	scripts/with-dynamodb.sh $(GO) run ./bench $(BENCH_FLAGS)

bench-go: ## the gateway's Go benchmarks: overhead vs a direct call, stream TTFB, allocations, latency at 500 rps, memory per stream
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=1x ./internal/gateway/
	$(GO) test -run '^$$' -bench 'Chat|StreamTTFB|GatewayHandler' -benchmem -benchtime=3000x ./internal/gateway/

# Lambda packages and the CDK app (infra/ is its own Go module; its CLI and Node 22 come from
# infra/_tools/package.json). CONFIG is the config.yaml bundled with the functions and read
# by the stack; STREAMING=false synthesizes the buffered variant that sam local needs.
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

synth: build infra-tools ## CloudFormation template in infra/cdk.out (STREAMING=false for sam local)
	$(CDK) synth $(CDK_CONTEXT) --quiet
	@ls infra/cdk.out/*.template.json

deploy: build infra-tools ## cdk deploy into the account/region of your AWS credentials (DEPLOY_FLAGS=...)
	$(CDK) deploy $(CDK_CONTEXT) $(DEPLOY_FLAGS)

# W3005: CDK's Function declares DependsOn on its role next to a GetAtt of it (harmless).
lint: vet synth ## go vet, then cfn-lint on the synthesized template
	cfn-lint --ignore-checks W3005 -- infra/cdk.out/*.template.json

test-infra: infra-tools ## CDK assertions, cdk-nag AwsSolutions, cfn-lint (go test in infra/)
	cd infra && export PATH="$(CDK_TOOLS):$$PATH" && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

clean:
	rm -rf bin dist
