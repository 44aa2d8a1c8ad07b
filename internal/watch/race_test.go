//go:build race

package watch

import "time"

// raceSlack widens the latency bounds the tests assert (not deadlines the
// code enforces): the race detector makes the rescue's /proc scan several
// times slower. make test also runs this package without it, where the
// bounds hold as documented.
const raceSlack = 4 * time.Second
