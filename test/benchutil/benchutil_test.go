package benchutil

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	tests := []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"none", nil, 0.5, 0},
		{"one", []time.Duration{7}, 0.99, 7},
		{"odd median", []time.Duration{5, 1, 3}, 0.5, 3},
		{"even median is the upper middle", []time.Duration{4, 1, 3, 2}, 0.5, 3},
		{"min", []time.Duration{4, 1, 3, 2}, 0, 1},
		{"max", []time.Duration{4, 1, 3, 2}, 1, 4},
		{"p99 of 100", func() []time.Duration {
			var ds []time.Duration
			for i := 100; i >= 1; i-- {
				ds = append(ds, time.Duration(i))
			}
			return ds
		}(), 0.99, 99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tt.ds...)
			if got := Percentile(tt.ds, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.ds, tt.p, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.ds[i] {
					t.Fatalf("Percentile reordered its input: %v, was %v", tt.ds, in)
				}
			}
		})
	}
}

func TestMedianIsMiddleIndex(t *testing.T) {
	// The benchmarks' former median: the sorted sample at len/2.
	for n := 1; n <= 50; n++ {
		ds := make([]time.Duration, n)
		for i := range ds {
			ds[i] = time.Duration((i * 7919) % n) // a permutation of 0..n-1
		}
		if got := Median(ds); got != time.Duration(n/2) {
			t.Fatalf("Median of a permutation of 0..%d = %v, want %v", n-1, got, n/2)
		}
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		d, base time.Duration
		want    float64
	}{
		{3 * time.Second, 2 * time.Second, 1.5},
		{time.Millisecond, time.Second, 0.001},
		{5, 0, 5},
		{0, 5, 0},
	}
	for _, tt := range tests {
		if got := Ratio(tt.d, tt.base); got != tt.want {
			t.Errorf("Ratio(%v, %v) = %v, want %v", tt.d, tt.base, got, tt.want)
		}
	}
}
