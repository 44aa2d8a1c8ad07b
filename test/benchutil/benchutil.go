// Package benchutil summarises the timings of benchmarks, which report
// medians and ratios against a baseline measured in the same run rather
// than absolute times.
package benchutil

import (
	"slices"
	"time"
)

// Percentile returns the p-quantile (0 ≤ p ≤ 1) of ds by the nearest rank,
// 0 for no samples; ds is left as it is.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1)+0.5)]
}

// Median is the 0.5 percentile: the upper middle sample of an even count.
func Median(ds []time.Duration) time.Duration { return Percentile(ds, 0.5) }

// Ratio is d over base; a zero base counts as 1 ns, so the ratio stays
// finite.
func Ratio(d, base time.Duration) float64 { return float64(d) / float64(max(base, 1)) }
