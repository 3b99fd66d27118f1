package traefik

import (
	"math"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/router"
)

// Weights read back from a live TraefikService are whatever its author wrote:
// out-of-range values must not wrap around when held as int32.
func TestWeight32_ClampsWeightsReadBack(t *testing.T) {
	tests := []struct {
		name string
		in   int64
		want int32
	}{
		{name: "in range", in: 30, want: 30},
		{name: "above int32", in: math.MaxInt32 + 10, want: math.MaxInt32},
		{name: "negative", in: -5, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(weight32(tt.in)).To(Equal(tt.want))
		})
	}
}

func TestPercent_OfClampedWeightsSumsTo100(t *testing.T) {
	g := NewWithT(t)
	got := percent(router.Routes{PrimaryWeight: weight32(-1), CanaryWeight: weight32(5)})
	g.Expect(got).To(Equal(router.Routes{PrimaryWeight: 0, CanaryWeight: 100}))
	got = percent(router.Routes{PrimaryWeight: 1, CanaryWeight: 3})
	g.Expect(got).To(Equal(router.Routes{PrimaryWeight: 25, CanaryWeight: 75}))
}
