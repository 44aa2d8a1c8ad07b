package otelenv

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		enabled bool
	}{
		{
			name: "nothing set: off",
			env:  nil,
			want: Config{Exporter: ExporterOTLP, ServiceName: "fuseguard"},
		},
		{
			name:    "generic endpoint gets the traces path",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
			want:    Config{Exporter: ExporterOTLP, ServiceName: "fuseguard", Endpoint: "http://127.0.0.1:4318/v1/traces"},
			enabled: true,
		},
		{
			name:    "generic endpoint with trailing slash",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/base/"},
			want:    Config{Exporter: ExporterOTLP, ServiceName: "fuseguard", Endpoint: "http://collector:4318/base/v1/traces"},
			enabled: true,
		},
		{
			name: "traces endpoint is used as-is and wins",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://a:4318",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:9999/custom",
			},
			want:    Config{Exporter: ExporterOTLP, ServiceName: "fuseguard", Endpoint: "http://b:9999/custom"},
			enabled: true,
		},
		{
			name: "service name and explicit otlp exporter",
			env: map[string]string{
				"OTEL_SERVICE_NAME":           " fuseguard-hook ",
				"OTEL_TRACES_EXPORTER":        "OTLP",
				"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1",
			},
			want:    Config{Exporter: ExporterOTLP, ServiceName: "fuseguard-hook", Endpoint: "http://h:1/v1/traces"},
			enabled: true,
		},
		{
			name:    "console needs no endpoint",
			env:     map[string]string{"OTEL_TRACES_EXPORTER": "console"},
			want:    Config{Exporter: ExporterConsole, ServiceName: "fuseguard"},
			enabled: true,
		},
		{
			name: "none beats an endpoint",
			env: map[string]string{
				"OTEL_TRACES_EXPORTER":        "none",
				"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1",
			},
			want: Config{Exporter: ExporterNone, ServiceName: "fuseguard", Endpoint: "http://h:1/v1/traces"},
		},
		{
			name: "SDK disabled beats everything",
			env: map[string]string{
				"OTEL_SDK_DISABLED":           "TRUE",
				"OTEL_TRACES_EXPORTER":        "console",
				"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1",
			},
			want: Config{Exporter: ExporterConsole, ServiceName: "fuseguard", Endpoint: "http://h:1/v1/traces", Disabled: true},
		},
		{
			name: "SDK disabled only by true",
			env: map[string]string{
				"OTEL_SDK_DISABLED":           "1",
				"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1",
			},
			want:    Config{Exporter: ExporterOTLP, ServiceName: "fuseguard", Endpoint: "http://h:1/v1/traces"},
			enabled: true,
		},
		{
			name:    "export timeout in milliseconds",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1", "OTEL_EXPORTER_OTLP_TIMEOUT": "250"},
			want:    Config{Exporter: ExporterOTLP, ServiceName: "fuseguard", Endpoint: "http://h:1/v1/traces", ExportTimeout: 250 * time.Millisecond},
			enabled: true,
		},
		{
			name: "traces timeout wins",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":       "http://h:1",
				"OTEL_EXPORTER_OTLP_TIMEOUT":        "250",
				"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": " 40 ",
			},
			want:    Config{Exporter: ExporterOTLP, ServiceName: "fuseguard", Endpoint: "http://h:1/v1/traces", ExportTimeout: 40 * time.Millisecond},
			enabled: true,
		},
		{
			name: "malformed and non-positive timeouts are ignored",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":       "http://h:1",
				"OTEL_EXPORTER_OTLP_TIMEOUT":        "1s",
				"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "0",
			},
			want:    Config{Exporter: ExporterOTLP, ServiceName: "fuseguard", Endpoint: "http://h:1/v1/traces"},
			enabled: true,
		},
		{
			name: "unknown exporter is kept for New to reject",
			env:  map[string]string{"OTEL_TRACES_EXPORTER": "zipkin", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1"},
			want: Config{Exporter: "zipkin", ServiceName: "fuseguard", Endpoint: "http://h:1/v1/traces"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ConfigFromEnv(func(k string) string { return tt.env[k] })
			if got != tt.want {
				t.Errorf("ConfigFromEnv = %+v, want %+v", got, tt.want)
			}
			if got.Enabled() != tt.enabled {
				t.Errorf("Enabled() = %v, want %v", got.Enabled(), tt.enabled)
			}
		})
	}
}

func TestPassEnv(t *testing.T) {
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318",
		"OTEL_SERVICE_NAME":           "svc",
		"OTEL_EXPORTER_OTLP_TIMEOUT":  "50",
		"TRACEPARENT":                 "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"OTEL_RESOURCE_ATTRIBUTES":    "a=b",
		"PATH":                        "/bin",
	}
	got := PassEnv(func(k string) string { return env[k] })
	want := []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://h:4318",
		"OTEL_SERVICE_NAME=svc",
		"OTEL_EXPORTER_OTLP_TIMEOUT=50",
	}
	if !slices.Equal(got, want) {
		t.Errorf("PassEnv = %q, want %q", got, want)
	}
	// What is passed configures the child exactly as the parent.
	child := map[string]string{}
	for _, kv := range got {
		k, v, _ := strings.Cut(kv, "=")
		child[k] = v
	}
	if a, b := ConfigFromEnv(func(k string) string { return env[k] }), ConfigFromEnv(func(k string) string { return child[k] }); a != b {
		t.Errorf("child config %+v, parent %+v", b, a)
	}
	if got := PassEnv(func(string) string { return "" }); got != nil {
		t.Errorf("PassEnv of an empty env = %q", got)
	}
}
