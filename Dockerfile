# syntax=docker/dockerfile:1
# Build: a static binary (no cgo), so the runtime image needs no libc.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/isrproxy .

# Run: an empty image holding the binary and the CA roots (for an https
# origin), as an unprivileged user. There is no shell, so the HEALTHCHECK
# uses the binary's own healthcheck subcommand.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/isrproxy /isrproxy
USER 65532:65532
ENV LISTEN_ADDR=:8080 ADMIN_ADDR=:9090
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/isrproxy", "healthcheck"]
ENTRYPOINT ["/isrproxy"]
