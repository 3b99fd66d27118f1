package main

import (
	"bytes"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
)

func TestRatio_Formats(t *testing.T) {
	for _, tc := range []struct {
		name            string
		flagger, sluice float64
		want            string
	}{
		{"both zero", 0, 0, "–"},
		{"sluice zero", 5, 0, "∞"},
		{"small", 3, 2, "1.50×"},
		{"flagger better", 1, 4, "0.25×"},
		{"large without decimals", 1234, 2, "617×"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(ratio(tc.flagger, tc.sluice)).To(Equal(tc.want))
		})
	}
}

// twoSides: two canaries each; Flagger is 10× as busy when idle and
// notices and finishes later.
func twoSides() (side, side) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	a := types.NamespacedName{Namespace: "bench-0", Name: "app-0000"}
	b := types.NamespacedName{Namespace: "bench-0", Name: "app-0001"}
	fa := types.NamespacedName{Namespace: "flagger-0", Name: "app-0000"}
	fb := types.NamespacedName{Namespace: "flagger-0", Name: "app-0001"}
	s := side{name: "Sluice", idle: counts{"GET leases": 30}, idleFor: time.Minute, released: t0,
		progress: counts{"GET deployments": 40, "PATCH canaries": 16}, steps: 8, queries: 8,
		tracks: map[types.NamespacedName]*track{
			a: {start: at(0.5), steps: []time.Time{at(10), at(20), at(30), at(40)}, done: at(50)},
			b: {start: at(1), steps: []time.Time{at(11), at(21), at(31), at(41)}, done: at(60)},
		},
		engine: map[string]time.Duration{"app-0000": 45 * time.Second, "app-0001": 50 * time.Second},
		cpu:    10 * time.Second, maxRSS: 50 << 20, hwm: 40 << 20}
	f := side{name: "Flagger", idle: counts{"GET canaries": 300}, idleFor: time.Minute, released: t0,
		progress: counts{"GET deployments": 400, "UPDATE canaries": 80}, steps: 8, queries: 16,
		tracks: map[types.NamespacedName]*track{
			fa: {start: at(10), done: at(150)},
			fb: {start: at(20), done: at(180), failed: true},
		},
		cpu: 30 * time.Second, maxRSS: 100 << 20}
	return s, f
}

func TestComparisonRows_BothColumnsAndTheRatio(t *testing.T) {
	g := NewWithT(t)
	s, f := twoSides()
	rows := map[string]row{}
	for _, r := range comparisonRows(s, f) {
		rows[r.figure] = r
	}
	g.Expect(rows["idle API requests per second"]).To(Equal(row{"idle API requests per second", "0.500", "5.000", "10.00×"}))
	g.Expect(rows["API requests per analysis step (releases)"]).To(Equal(row{"API requests per analysis step (releases)", "7.0", "60.0", "8.57×"}))
	g.Expect(rows["API writes per analysis step (releases)"]).To(Equal(row{"API writes per analysis step (releases)", "2.00", "10.00", "5.00×"}))
	g.Expect(rows["metric queries per analysis step"].ratio).To(Equal("2.00×"))
	g.Expect(rows["patch → new revision noticed, max"]).To(Equal(row{"patch → new revision noticed, max", "1.00s", "20.00s", "20.00×"}))
	// A failed Flagger release is not a finished one: only app-0000 counts.
	g.Expect(rows["release (patch → Succeeded), max"]).To(Equal(row{"release (patch → Succeeded), max", "60.00s", "150.00s", "2.50×"}))
	g.Expect(rows["release, engine only (less pod waits), max"].sluice).To(Equal("50.00s"))
	g.Expect(rows["release, engine only (less pod waits), max"].flagger).To(Equal("n/a"))
	g.Expect(rows["releases finished / failed"]).To(Equal(row{"releases finished / failed", "2 / 0", "2 / 1", ""}))
	g.Expect(rows["CPU, whole run"].ratio).To(Equal("3.00×"))
	// Peak RSS is the larger of rusage and VmHWM.
	g.Expect(rows["peak RSS"]).To(Equal(row{"peak RSS", "50 MiB", "100 MiB", "2.00×"}))
}

func TestReleaseFactor_PairsCanariesByName(t *testing.T) {
	g := NewWithT(t)
	s, f := twoSides()
	worst, pairs := releaseFactor(s, f)
	g.Expect(pairs).To(Equal(1), "the failed Flagger release pairs with nothing")
	g.Expect(worst).To(BeNumerically("~", 3.0, 1e-9)) // 150 s ÷ 50 s
}

func TestGoalLines_SayMetOrByHowMuchMissed(t *testing.T) {
	g := NewWithT(t)
	s, f := twoSides()
	lines := goalLines(100, s, f)
	g.Expect(lines).To(HaveLen(2))
	g.Expect(lines[0]).To(ContainSubstring("MISSED by 10.0× (10.0× fewer)"))
	g.Expect(lines[1]).To(ContainSubstring("3.00× → met"))
	g.Expect(lines[1]).To(ContainSubstring("the goal is stated at N=300; this run is N=100"))

	f.idle = counts{"GET canaries": 3000}
	f.tracks[types.NamespacedName{Namespace: "flagger-0", Name: "app-0000"}].done = time.Unix(1100, 0)
	lines = goalLines(300, s, f)
	g.Expect(lines[0]).To(HaveSuffix("→ met"))
	g.Expect(lines[1]).To(ContainSubstring("MISSED (the slowest pair is 2.00×, want 2.5×)"))
	g.Expect(lines[1]).NotTo(ContainSubstring("this run is"))
}

func TestPrintComparison_OneTable(t *testing.T) {
	g := NewWithT(t)
	s, f := twoSides()
	var buf bytes.Buffer
	printComparison(&buf, config{n: 8, interval: 10 * time.Second, idle: time.Minute}, benchFleet(), s, f)
	out := buf.String()
	g.Expect(out).To(ContainSubstring("figure"))
	g.Expect(out).To(MatchRegexp(`idle API requests per second\s+0\.500\s+5\.000\s+10\.00×`))
	g.Expect(out).To(ContainSubstring("goal: Sluice makes ≥ 100× fewer idle API requests"))
	g.Expect(out).To(ContainSubstring("Flagger idle requests by verb and resource"))
}

func TestPromAnswer_FlaggerLivenessQuery(t *testing.T) {
	g := NewWithT(t)
	g.Expect(promAnswer("vector(1)")).To(Equal("1"))
	g.Expect(promAnswer(" vector(1) ")).To(Equal("1"))
	g.Expect(promAnswer(`sum(rate(http_requests_total{code!~"5.."}[1m]))`)).To(Equal("100"))
}
