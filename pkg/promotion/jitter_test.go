package promotion

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestJittered(t *testing.T) {
	g := NewWithT(t)
	g.Expect(jittered(30*time.Second, 0)).To(Equal(30 * time.Second))
	g.Expect(jittered(30*time.Second, 0.5)).To(Equal(31500 * time.Millisecond))
	g.Expect(jittered(5*time.Minute, 0.999)).To(BeNumerically("<", 5*time.Minute+30*time.Second))
	g.Expect(jittered(5*time.Minute, 0.999)).To(BeNumerically(">", 5*time.Minute+29*time.Second))
	// Out of range numbers stay within 0 and 10 %.
	g.Expect(jittered(10*time.Second, 7)).To(Equal(11 * time.Second))
	g.Expect(jittered(10*time.Second, -1)).To(Equal(10 * time.Second))
	// Nothing to requeue stays nothing.
	g.Expect(jittered(0, 0.5)).To(BeZero())

	// The random requeues spread over [d, 1.1 d).
	seen := map[time.Duration]bool{}
	for range 200 {
		d := jitter(time.Minute)
		g.Expect(d).To(And(BeNumerically(">=", time.Minute), BeNumerically("<", 66*time.Second)))
		seen[d.Truncate(time.Second)] = true
	}
	g.Expect(len(seen)).To(BeNumerically(">", 1), "not in lockstep")
}
