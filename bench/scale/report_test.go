package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestDerive_LatestStepIsTheEngines: the first step is measured from when
// it was due or the canary's pods were ready, whichever came later, so a
// canary that waited for its pods is not the latest; a later step one
// interval late is.
func TestDerive_LatestStepIsTheEngines(t *testing.T) {
	g := NewWithT(t)
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	slowPods := types.NamespacedName{Namespace: "bench-0", Name: "app-0000"}
	lateStep := types.NamespacedName{Namespace: "bench-0", Name: "app-0001"}
	r := &result{tracks: map[types.NamespacedName]*track{
		// Pods ready 30 s after the start, the first step 0.5 s after that.
		slowPods: {provider: sluicev1beta1.ProviderGatewayAPI, start: at(0), targetReady: at(30),
			steps: []time.Time{at(30.5), at(40.5), at(50.5), at(60.5)}, done: at(70.5)},
		// The third step came 11 s after it was due.
		lateStep: {provider: sluicev1beta1.ProviderGatewayAPI, start: at(0), targetReady: at(5),
			steps: []time.Time{at(10), at(20), at(41), at(51)}, done: at(61)},
	}}
	c := config{n: 2, interval: 10 * time.Second}
	s := derive(c, benchFleet(), r)
	g.Expect(s.latest.key).To(Equal(lateStep))
	g.Expect(s.latest.step).To(Equal(3))
	g.Expect(s.latest.late).To(Equal(11 * time.Second))
	// The raw lateness still counts the wait for the pods.
	g.Expect(pctDur(s.lateness, 1)).To(Equal(20500 * time.Millisecond))
}

func TestControlPlaneLimits_InTheHeading(t *testing.T) {
	g := NewWithT(t)
	g.Expect(config{}.controlPlaneLimits()).To(ContainSubstring("default client rate limits (20 and 50 requests/s)"))
	g.Expect(config{unlimited: true}.controlPlaneLimits()).To(ContainSubstring("without client rate limits (-disable-qps-limits)"))
	s, f := twoSides()
	var buf bytes.Buffer
	printComparison(&buf, config{n: 8, interval: 10 * time.Second, idle: time.Minute, unlimited: true}, benchFleet(), s, f)
	heading, _, _ := strings.Cut(strings.TrimSpace(buf.String()), "\n")
	g.Expect(heading).To(HaveSuffix("without client rate limits (-disable-qps-limits)"))
}
