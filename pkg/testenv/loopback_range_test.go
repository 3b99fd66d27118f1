package testenv

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestWithLoopbackServicesIn_RejectsRangesOutsideLoopbackOrOverlapping(t *testing.T) {
	tests := []struct {
		name    string
		cidr    string
		wantErr string
	}{
		{name: "a second loopback range", cidr: "127.97.0.0/16"},
		{name: "not a CIDR", cidr: "127.97.0.0", wantErr: "invalid loopback Service range"},
		{name: "outside loopback", cidr: "10.0.0.0/16", wantErr: "is not inside 127.0.0.0/8"},
		{name: "wider than loopback", cidr: "126.0.0.0/7", wantErr: "is not inside 127.0.0.0/8"},
		{name: "inside the first cluster's range", cidr: "127.96.8.0/24", wantErr: "overlaps 127.96.0.0/16"},
		{name: "around the first cluster's range", cidr: "127.96.0.0/12", wantErr: "overlaps 127.96.0.0/16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			opt, err := WithLoopbackServicesIn(tt.cidr)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
				g.Expect(opt).To(BeNil())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(opt).NotTo(BeNil())
		})
	}
}
