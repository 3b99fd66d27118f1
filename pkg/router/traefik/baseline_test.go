package traefik

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/router"
)

// Relative weights of three entries (a hand edit, or a user's scale) read
// back as percentages that add up to 100, the baseline's included.
func TestPercent_ThreeWays(t *testing.T) {
	tests := []struct {
		name string
		in   router.Routes
		want router.Routes
	}{
		{name: "already percentages", in: router.Routes{PrimaryWeight: 80, BaselineWeight: 10, CanaryWeight: 10},
			want: router.Routes{PrimaryWeight: 80, BaselineWeight: 10, CanaryWeight: 10}},
		{name: "relative", in: router.Routes{PrimaryWeight: 8, BaselineWeight: 1, CanaryWeight: 1},
			want: router.Routes{PrimaryWeight: 80, BaselineWeight: 10, CanaryWeight: 10}},
		{name: "thirds round to 100", in: router.Routes{PrimaryWeight: 1, BaselineWeight: 1, CanaryWeight: 1},
			want: router.Routes{PrimaryWeight: 34, BaselineWeight: 33, CanaryWeight: 33}},
		{name: "no primary", in: router.Routes{BaselineWeight: 1, CanaryWeight: 1},
			want: router.Routes{PrimaryWeight: 0, BaselineWeight: 50, CanaryWeight: 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := percent(tt.in)
			g.Expect(got).To(Equal(tt.want))
			g.Expect(got.PrimaryWeight + got.BaselineWeight + got.CanaryWeight).To(Equal(int32(100)))
		})
	}
}
