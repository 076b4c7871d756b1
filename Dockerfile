# The image the deploy/ manifests run: a static binary on distroless, as a non-root user.
#   docker build -t ghcr.io/logexport/kubectl-logexport:dev .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/logexport/kubectl-logexport/pkg/version.Version=${VERSION}" \
      -o /out/kubectl-logexport ./cmd/kubectl-logexport

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/kubectl-logexport /kubectl-logexport
USER 65532:65532
ENTRYPOINT ["/kubectl-logexport"]
