//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
)

// settle is how long after a weight change traffic is not attributed to the
// new weight: Traefik applies a route change within ~0.2 s (plus requests
// in flight); one second is generous.
const settle = time.Second

// rollout is what was observed while a release ran: the phases in order, the
// traffic counted at each canary weight while Progressing, and the Canary
// at the end.
type rollout struct {
	phases   []sluicev1beta1.CanaryPhase
	byWeight map[int32]stack.Counts
	// progressing is all traffic between polls that both saw Progressing.
	progressing stack.Counts
	total       stack.Counts
	final       *sluicev1beta1.Canary
	// start is when the watch began.
	start time.Time
}

// errorsSince returns the load's error samples from the watch's start on.
func (r rollout) errorsSince(load *stack.Load) []stack.ErrorSample {
	var out []stack.ErrorSample
	for _, e := range load.ErrorSamples() {
		if !e.At.Before(r.start) {
			out = append(out, e)
		}
	}
	return out
}

// watchRollout polls the Canary and the load every 200 ms until its phase is
// one of until, attributing the answers between two polls to the canary
// weight when the Canary was Progressing at that weight at both polls and
// the weight had been stable for settle.
func watchRollout(ctx context.Context, t *testing.T, key client.ObjectKey, load *stack.Load, timeout time.Duration, until ...sluicev1beta1.CanaryPhase) rollout {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := rollout{byWeight: map[int32]stack.Counts{}, start: time.Now()}
	start := load.Counts()
	prev := start
	var prevPhase sluicev1beta1.CanaryPhase
	prevWeight := int32(-1)
	weightSince := time.Now()
	for {
		c := &sluicev1beta1.Canary{}
		if err := env.Client.Get(ctx, key, c); err != nil {
			t.Fatalf("failed to read the Canary %s: %v", key, err)
		}
		now := load.Counts()
		phase, weight := c.Status.Phase, c.Status.CanaryWeight
		if phase != prevPhase {
			t.Logf("%s phase %s, canary weight %d", time.Now().Format("15:04:05.000"), phase, weight)
			r.phases = append(r.phases, phase)
		} else if weight != prevWeight {
			t.Logf("%s canary weight %d", time.Now().Format("15:04:05.000"), weight)
		}
		stable := weight == prevWeight && phase == prevPhase && time.Since(weightSince) >= settle
		if phase == prevPhase && phase == sluicev1beta1.CanaryPhaseProgressing {
			r.progressing = r.progressing.Add(now.Sub(prev))
		}
		if stable && phase == sluicev1beta1.CanaryPhaseProgressing {
			r.byWeight[weight] = r.byWeight[weight].Add(now.Sub(prev))
		}
		if weight != prevWeight || phase != prevPhase {
			weightSince = time.Now()
		}
		prev, prevPhase, prevWeight = now, phase, weight
		for _, p := range until {
			if phase == p {
				r.final = c
				r.total = now.Sub(start)
				return r
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the Canary %s did not reach %v within %s: phases %v, status %+v\nsluice logs:\n%s", key, until, timeout, r.phases, c.Status, env.ManagerLogs(6000))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// expectSplitFollowsWeights asserts that at every canary weight with enough
// answers, the share of the canary version is the weight, within tolerance
// (Traefik's weighted round robin is exact; the tolerance covers requests
// in flight across a change). It returns the weights checked.
func expectSplitFollowsWeights(g Gomega, r rollout, canaryVersion string, minAnswers int, tolerance float64) []int32 {
	var checked []int32
	for w, c := range r.byWeight {
		ok := 0
		for _, n := range c.ByVersion {
			ok += n
		}
		if ok < minAnswers {
			continue
		}
		checked = append(checked, w)
		g.Expect(c.Share(canaryVersion)).To(BeNumerically("~", float64(w)/100, tolerance),
			"at canary weight %d%% the canary served: %s", w, c)
	}
	sort.Slice(checked, func(i, j int) bool { return checked[i] < checked[j] })
	return checked
}

// describeSplits shows the traffic observed at each weight, for the test log.
func describeSplits(r rollout) string {
	var ws []int
	for w := range r.byWeight {
		ws = append(ws, int(w))
	}
	sort.Ints(ws)
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "\n  weight %3d%%: %s", w, r.byWeight[int32(w)])
	}
	return b.String()
}

// canaryFromYAML decodes a Canary written as YAML (readable in the test).
func canaryFromYAML(g Gomega, doc string) *sluicev1beta1.Canary {
	c := &sluicev1beta1.Canary{}
	g.Expect(yaml.UnmarshalStrict([]byte(doc), c)).To(Succeed(), "the test's Canary YAML is invalid")
	return c
}

// waitPhase waits until the Canary reaches phase.
func waitPhase(ctx context.Context, g Gomega, key client.ObjectKey, phase sluicev1beta1.CanaryPhase, timeout time.Duration) {
	c := &sluicev1beta1.Canary{}
	g.Eventually(func() sluicev1beta1.CanaryPhase {
		_ = env.Client.Get(ctx, key, c)
		return c.Status.Phase
	}, timeout, 200*time.Millisecond).Should(Equal(phase), func() string {
		return fmt.Sprintf("Canary %s status: %+v\nsluice logs:\n%s", key, c.Status, env.ManagerLogs(6000))
	})
}

// metricValues returns the values measured by the named metric check over
// the Canary's history.
func metricValues(c *sluicev1beta1.Canary, name string) []string {
	var out []string
	for _, step := range c.Status.History {
		for _, check := range step.Checks {
			if check.Name == name && check.Kind == "metric" && check.Value != nil {
				out = append(out, *check.Value)
			}
		}
	}
	return out
}
