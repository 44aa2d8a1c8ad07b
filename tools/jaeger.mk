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

$(JAEGER): tools/go.mod tools/go.sum
	go -C tools build -o $(abspath $(JAEGER)) github.com/jaegertracing/jaeger/cmd/jaeger

.PHONY: jaeger
jaeger: $(JAEGER)
	@echo "Jaeger UI:  http://$(JAEGER_QUERY_HTTP)"
	@echo "Point fuseguard at it:"
	@echo "  export OTEL_EXPORTER_OTLP_ENDPOINT=http://$(JAEGER_OTLP_HTTP)"
	@echo "  export OTEL_SERVICE_NAME=fuseguard    # optional, the default"
	@echo "(Ctrl-C stops Jaeger; traces are kept in memory only.)"
	FUSEGUARD_JAEGER_OTLP_HTTP=$(JAEGER_OTLP_HTTP) \
	FUSEGUARD_JAEGER_QUERY_HTTP=$(JAEGER_QUERY_HTTP) \
	FUSEGUARD_JAEGER_QUERY_GRPC=$(JAEGER_QUERY_GRPC) \
	$(JAEGER) --config $(JAEGER_CONFIG)
