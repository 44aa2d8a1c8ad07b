# Jaeger for local tracing, pinned by tools/go.mod (a module of its own, so
# its dependencies never reach fuseguard's go.mod). Include from the top
# Makefile:   include tools/jaeger.mk
#
#   make bin/jaeger   build the pinned jaeger (cmd/jaeger, Jaeger v2)
#   make jaeger       run it: in-memory storage, OTLP/HTTP on $(JAEGER_OTLP_HTTP),
#                     UI and query API on $(JAEGER_QUERY_HTTP), loopback only

JAEGER            ?= bin/jaeger
JAEGER_CONFIG     ?= tools/jaeger-config.yaml
JAEGER_OTLP_HTTP  ?= 127.0.0.1:4318
JAEGER_QUERY_HTTP ?= 127.0.0.1:16686
JAEGER_QUERY_GRPC ?= 127.0.0.1:16685
# A built jaeger-ui (packages/jaeger-ui/build of github.com/jaegertracing/jaeger-ui):
# the Go module carries no UI assets, so without it the UI is a placeholder
# page while the query API (/api/traces, /api/v3) works.
JAEGER_UI_ASSETS  ?=

$(JAEGER): tools/go.mod tools/go.sum
	go -C tools build -o $(abspath $(JAEGER)) github.com/jaegertracing/jaeger/cmd/jaeger

.PHONY: jaeger
jaeger: $(JAEGER)
	@echo "Jaeger UI and query API:  http://$(JAEGER_QUERY_HTTP)"
	@echo "  traces of a service:    curl 'http://$(JAEGER_QUERY_HTTP)/api/traces?service=fuseguard'"
	@$(if $(JAEGER_UI_ASSETS),,echo "  (UI is a placeholder page: set JAEGER_UI_ASSETS=<jaeger-ui build dir> for the real one)")
	@echo "Point fuseguard at it:"
	@echo "  export OTEL_EXPORTER_OTLP_ENDPOINT=http://$(JAEGER_OTLP_HTTP)"
	@echo "  export OTEL_SERVICE_NAME=fuseguard    # optional, the default"
	@echo "(Ctrl-C stops Jaeger; traces are kept in memory only.)"
	FUSEGUARD_JAEGER_OTLP_HTTP=$(JAEGER_OTLP_HTTP) \
	FUSEGUARD_JAEGER_QUERY_HTTP=$(JAEGER_QUERY_HTTP) \
	FUSEGUARD_JAEGER_QUERY_GRPC=$(JAEGER_QUERY_GRPC) \
	FUSEGUARD_JAEGER_UI_ASSETS=$(JAEGER_UI_ASSETS) \
	$(JAEGER) --config $(JAEGER_CONFIG)
