# lossd — see README.md. Every target installs missing Debian packages first when run as root.
.PHONY: run build test lint openapi bench bench-http bench-kernels bench-loss bench-tls bench-store bench-fairness bench-client bench-scaling bench-cldice fuzz clean

FUZZ_SECONDS ?= 60

run:            ## build (release) and start on 127.0.0.1:8080, store under ./data
	bash scripts/run.sh

build:          ## release build (one binary per architecture; kernel instruction set chosen at start-up)
	bash scripts/install-deps.sh
	bash scripts/build-release.sh

test:           ## every test: swift test (unit + real-binary integration) and the linters
	bash scripts/test.sh

lint:           ## openapi.yaml, Dockerfile and deploy/ manifests
	bash scripts/lint.sh

openapi:        ## rewrite openapi.yaml's generated regions (loss schemas, method enums) from the catalogues
	swift build --build-tests
	LOSSD_WRITE_OPENAPI=1 swift test --skip-build --filter OpenAPIFragmentTests

bench: bench-kernels bench-http bench-loss bench-tls bench-store bench-fairness bench-client bench-scaling bench-cldice  ## all benchmarks, printing figures

bench-kernels:  ## cross-entropy kernel and JSON tensor parsing, beside NumPy
	bash bench/kernels/run.sh

bench-loss:     ## wrk on POST /v1/loss (64x10 at 32 connections, 256x1000 at 8) against a FastAPI+NumPy app
	bash bench/loss/run.sh

bench-http:     ## wrk against lossd and a FastAPI app on the same routes
	bash bench/http/run.sh

bench-tls:      ## wrk on the same lossd, plain and with TLS: keep-alive and new-connection rates
	bash bench/tls/run.sh

bench-fairness: ## a light client's /v1/loss latency while heavy clients saturate the workers, with and without the light lane
	bash bench/fairness/run.sh

bench-client:   ## one 256x1000 training step through the Python client beside NumPy, and JSON with and without gzip
	bash bench/client/run.sh

bench-scaling:  ## scaling-law fits (1000-point chinchilla, 100,000-step lr_annealing) through lossd beside SciPy in-process
	bash bench/scaling/run.sh

bench-cldice:   ## cldice value + gradient on a 4x2x256x256 batch through lossd beside NumPy in-process
	bash bench/cldice/run.sh

bench-store:    ## wrk on calibrate-by-name: one lossd on SQLite, one and two on a throwaway PostgreSQL
	bash bench/store/run.sh

fuzz:           ## libFuzzer on the HTTP parser, JSON reader, number scanner and /v1/loss decoding (json, npy, multipart, gzip), FUZZ_SECONDS each
	bash scripts/fuzz.sh all $(FUZZ_SECONDS)

clean:
	swift package clean
