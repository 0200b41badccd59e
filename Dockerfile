# syntax=docker/dockerfile:1
# Build: a static binary (no cgo), so the runtime image needs no libc.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/isrproxy .
# The data directory, owned by the runtime user: an empty base has no mkdir.
RUN mkdir -p /out/data/acme && chmod 0700 /out/data/acme

# Run: an empty image holding the binary and the CA roots (for an https
# origin and the ACME CA), as an unprivileged user. There is no shell, so
# the HEALTHCHECK uses the binary's own healthcheck subcommand. ACME
# accounts and certificates live in the volume /data: keep it across
# deploys, or every start asks the CA for new certificates.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/isrproxy /isrproxy
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV LISTEN_ADDR=:8080 ADMIN_ADDR=:9090 TLS_ADDR=:8443 ACME_STORAGE=/data/acme
VOLUME /data
EXPOSE 8080 8443 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/isrproxy", "healthcheck"]
ENTRYPOINT ["/isrproxy"]
