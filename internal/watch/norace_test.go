//go:build !race

package watch

import "time"

// raceSlack is 0 without the race detector: see race_test.go.
const raceSlack = 0 * time.Second
