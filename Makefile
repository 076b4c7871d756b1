# The commands a newcomer needs; CI (.ci/run) runs `make test`.
.PHONY: build test unit e2e release-check demo demo-down tools bench soak soak-bucket

build:
	go build -o bin/kubectl-logexport ./cmd/kubectl-logexport

# The control plane and the S3 server (SeaweedFS) the end-to-end tests start.
tools:
	hack/tools.sh cluster weed

unit:
	@files=$$(gofmt -l cmd pkg test hack); if [ -n "$$files" ]; then echo "not gofmt-ed: $$files"; exit 1; fi
	go vet ./...
	go test -count=1 -timeout 30m ./pkg/... ./hack/... ./test/bench/ ./test/kwok/ ./test/logserver/ ./test/s3fake/ ./test/model/

e2e: tools
	go test -count=1 -timeout 40m ./test/e2e/

# The model-based randomized test for longer (MODEL_SEQUENCES sequences; see test/model); not part of `test`.
# soak-bucket: the same into a bucket, whose sequences cost more.
soak:
	MODEL_RANDOM=1 MODEL_SEQUENCES=$${MODEL_SEQUENCES:-20000} go test -count=1 -timeout 0 -run '^TestModel$$' ./test/model/

soak-bucket:
	MODEL_RANDOM=1 MODEL_SEQUENCES=$${MODEL_SEQUENCES:-3000} go test -count=1 -timeout 0 -run '^TestModelBucket$$' ./test/model/

release-check:
	hack/release-check.sh

test: unit e2e release-check

# Side by side with the raw API, stern and kubectl logs on a local cluster; not part of `test`
# (about an hour on 2 cores). BENCH_FLAGS passes flags, BENCH_SCALE scales the workloads.
bench: tools
	CGO_ENABLED=0 go build -ldflags "-s -w" -o bin/bench ./test/bench
	bin/bench $(BENCH_FLAGS)

demo:
	hack/demo.sh

demo-down:
	hack/demo.sh down
