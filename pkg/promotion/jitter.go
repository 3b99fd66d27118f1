package promotion

import (
	"math/rand/v2"
	"time"
)

// maxJitter is the largest share of a periodic requeue added at random.
const maxJitter = 0.1

// jittered lengthens a periodic requeue (a scan interval, the poll of a
// stage on its way) by up to 10 %, so that Pipelines created or restarted
// together do not scan registries and Git hosts in lockstep. Only periodic
// work is jittered: a soak's end or a window's opening is exact. r is a
// random number in [0, 1); it is a parameter so that the function is pure.
func jittered(d time.Duration, r float64) time.Duration {
	if d <= 0 || r <= 0 {
		return d
	}
	if r >= 1 {
		r = 1
	}
	return d + time.Duration(float64(d)*maxJitter*r)
}

// jitter is jittered with a random number: scheduling needs no secure
// randomness, only a spread.
func jitter(d time.Duration) time.Duration {
	return jittered(d, rand.Float64()) //nolint:gosec // G404: a spread of requeues, not a secret
}
