# The commands a newcomer needs; CI (.ci/run) runs `make test`.
.PHONY: build test unit e2e release-check demo demo-down tools

build:
	go build -o bin/kubectl-logexport ./cmd/kubectl-logexport

tools:
	hack/tools.sh cluster

unit:
	go vet ./...
	go test -count=1 ./pkg/...

e2e: tools
	go test -count=1 -timeout 40m ./test/e2e/

release-check:
	hack/release-check.sh

test: unit e2e release-check

demo:
	hack/demo.sh

demo-down:
	hack/demo.sh down
