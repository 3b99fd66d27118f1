package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// watcher narrates what happens to the demo's GitSync and Canary, and the
// live traffic, by polling (the demo shows what a user would see).
type watcher struct {
	s    *stack.Stack
	p    *printer
	key  client.ObjectKey
	load *stack.Load

	gitRevision string
	// maxWeight is the highest canary weight of the current release.
	maxWeight int32
	phase     sluicev1beta1.CanaryPhase
	weight    int32
	steps     int
	mark      stack.Counts
}

func newWatcher(s *stack.Stack, p *printer, ns, name string) *watcher {
	return &watcher{s: s, p: p, key: client.ObjectKey{Namespace: ns, Name: name}, weight: -1}
}

// initialized waits for the first sync and the Canary's initialization.
func (w *watcher) initialized(ctx context.Context, timeout time.Duration) error {
	return w.until(ctx, timeout, func(c *sluicev1beta1.Canary) bool {
		if c.Status.Phase == sluicev1beta1.CanaryPhaseInitialized {
			w.p.ok("the engine took %s over: %s-primary serves the traffic, %s is scaled to zero until the next release", c.Name, c.Name, c.Name)
			return true
		}
		return false
	})
}

// serving waits until the live traffic is answered by version.
func (w *watcher) serving(ctx context.Context, version string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c := w.load.Counts()
		if c.ByVersion[version] >= rps {
			w.p.ok("%s answers: %s", version, w.split(c))
			w.mark = w.load.Counts()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("no answer from %s through Traefik within %s: %s", version, timeout, w.load.Counts())
}

// release commits a new version to Git and narrates the rollout until it
// ends; it fails when the outcome is not the expected one.
func (w *watcher) release(ctx context.Context, repo *testenv.GitRepo, host string, r release, what string, promote bool) error {
	w.p.section("Release %s: %s", r.Version, what)
	files, err := manifests(host, r)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("podinfo %s", r.Version)
	sha, err := repo.Write(msg, map[string]string{"apps/podinfo/deployment.yaml": files["apps/podinfo/deployment.yaml"]})
	if err != nil {
		return err
	}
	w.p.cmd("git commit -m %q   # image ghcr.io/sluice-cd/demo:%s, error rate %.0f%%, latency %d ms", msg, r.Version, r.ErrorRate*100, r.LatencyMS)
	w.p.event("commit %s pushed; nothing else to do", sha[:7])
	begin := time.Now()
	w.mark = w.load.Counts()
	w.maxWeight = 0
	during := w.load.Counts()
	var final *sluicev1beta1.Canary
	started := false // the previous release's end is not this one's
	err = w.until(ctx, 5*time.Minute, func(c *sluicev1beta1.Canary) bool {
		switch c.Status.Phase {
		case sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseWaiting:
			started = true
		}
		if started && (c.Status.Phase == sluicev1beta1.CanaryPhaseSucceeded || c.Status.Phase == sluicev1beta1.CanaryPhaseFailed) {
			final = c
			return true
		}
		return false
	})
	if err != nil {
		return err
	}
	took := time.Since(begin).Round(time.Second)
	switch {
	case promote && final.Status.Phase == sluicev1beta1.CanaryPhaseSucceeded:
		w.p.ok("promoted in %s: %s-primary now runs %s", took, final.Name, r.Version)
	case !promote && final.Status.Phase == sluicev1beta1.CanaryPhaseFailed:
		w.p.bad("rolled back in %s: %s", took, failureReason(final))
		seen := w.load.Counts().Sub(during)
		if total := seen.Total; total > 0 {
			w.p.event("the faulty version never had more than %d%% of the traffic: users saw %d errors in %d requests (%.1f%%) during the release",
				w.maxWeight, seen.Errors(), total, float64(seen.Errors())*100/float64(total))
		}
	default:
		return fmt.Errorf("release %s ended %s, expected %s", r.Version, final.Status.Phase, map[bool]string{true: "Succeeded", false: "Failed"}[promote])
	}
	// Show that all traffic is back on one version.
	time.Sleep(2 * time.Second)
	w.mark = w.load.Counts()
	time.Sleep(3 * time.Second)
	w.p.event("live traffic now: %s", w.split(w.load.Counts().Sub(w.mark)))
	return nil
}

// until polls the GitSync and the Canary every 250 ms, narrating changes,
// until done holds for the Canary.
func (w *watcher) until(ctx context.Context, timeout time.Duration, done func(*sluicev1beta1.Canary) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		w.gitSync(ctx)
		c := &sluicev1beta1.Canary{}
		if err := w.s.Client.Get(ctx, w.key, c); err == nil {
			w.canary(c)
			if done(c) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the Canary %s did not get there within %s (phase %q)", w.key, timeout, w.phase)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (w *watcher) gitSync(ctx context.Context) {
	list := &sluicev1beta1.GitSyncList{}
	if err := w.s.Client.List(ctx, list); err != nil {
		return
	}
	for _, gs := range list.Items {
		rev := gs.Status.LastAppliedRevision
		if rev != "" && rev != w.gitRevision {
			w.gitRevision = rev
			w.p.event("%s GitSync %s/%s applied %s (%d objects, server-side apply)", w.p.paint(cyan, "git"), gs.Namespace, gs.Name, short(rev), len(gs.Status.Inventory))
		}
		if r := apimeta.FindStatusCondition(gs.Status.Conditions, sluicev1beta1.ReadyCondition); r != nil && r.Status == "False" && gs.Status.LastAttemptedRevision != w.gitRevision {
			w.p.event("%s GitSync %s/%s: %s", w.p.paint(red, "git"), gs.Namespace, gs.Name, r.Message)
		}
	}
}

func (w *watcher) canary(c *sluicev1beta1.Canary) {
	phase, weight := c.Status.Phase, c.Status.CanaryWeight
	if phase != w.phase {
		w.p.event("%s Canary %s/%s %s%s", w.p.paint(yellow, "canary"), c.Namespace, c.Name, w.p.paint(bold, string(phase)), phaseNote(phase))
		w.phase = phase
	}
	if len(c.Status.History) < w.steps {
		w.steps = 0
	}
	for i := w.steps; i < len(c.Status.History); i++ {
		// A step records the weight after it; its checks ran at the
		// weight of the step before.
		at := int32(0)
		if i > 0 {
			at = c.Status.History[i-1].Weight
		}
		w.stepLine(c.Status.History[i], at)
	}
	w.steps = len(c.Status.History)
	if weight != w.weight && phase == sluicev1beta1.CanaryPhaseProgressing {
		w.p.event("%s traffic shifted: canary %d%%, primary %d%%", w.p.paint(yellow, "route "), weight, 100-weight)
		w.mark = w.load.Counts()
	}
	w.weight = weight
	if phase == sluicev1beta1.CanaryPhaseProgressing && weight > w.maxWeight {
		w.maxWeight = weight
	}
}

// stepLine shows one analysis step: what the engine measured, and the
// traffic the load generator saw since the previous step.
func (w *watcher) stepLine(step sluicev1beta1.CanaryStep, at int32) {
	if len(step.Checks) == 0 {
		return
	}
	var checks []string
	for _, ch := range step.Checks {
		mark := w.p.paint(green, "✔")
		if ch.Outcome != sluicev1beta1.CheckPassed {
			mark = w.p.paint(red, "✘")
		}
		value := "no data"
		if ch.Value != nil {
			value = *ch.Value
		}
		switch ch.Name {
		case "request-success-rate":
			checks = append(checks, fmt.Sprintf("success rate %s%% (min %d) %s", trim(value), minSuccess, mark))
		case "request-duration":
			checks = append(checks, fmt.Sprintf("p99 latency %s ms (max %d) %s", trim(value), maxLatency, mark))
		default:
			checks = append(checks, fmt.Sprintf("%s %s %s", ch.Name, trim(value), mark))
		}
	}
	now := w.load.Counts()
	traffic := w.split(now.Sub(w.mark))
	w.mark = now
	w.p.event("%s at %d%%: %s", w.p.paint(yellow, "check "), at, strings.Join(checks, ", "))
	w.p.event("         traffic at %d%%: %s", at, traffic)
}

// split shows the share of each version in the answers, and the errors.
func (w *watcher) split(c stack.Counts) string {
	ok := 0
	for _, n := range c.ByVersion {
		ok += n
	}
	total := ok + c.Errors()
	if total == 0 {
		return "no answers yet"
	}
	versions := make([]string, 0, len(c.ByVersion))
	for v := range c.ByVersion {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	parts := make([]string, 0, len(versions)+1)
	for _, v := range versions {
		share := float64(c.ByVersion[v]) / float64(total)
		parts = append(parts, fmt.Sprintf("%s %s %3.0f%%", v, bar(share, 10), share*100))
	}
	if e := c.Errors(); e > 0 {
		parts = append(parts, w.p.paint(red, fmt.Sprintf("errors %.0f%%", float64(e)*100/float64(total))))
	}
	return strings.Join(parts, "  ") + w.p.paint(dim, fmt.Sprintf("  (%d requests)", total))
}

func failureReason(c *sluicev1beta1.Canary) string {
	for i := len(c.Status.History) - 1; i >= 0; i-- {
		for _, ch := range c.Status.History[i].Checks {
			if ch.Outcome != sluicev1beta1.CheckPassed && ch.Message != "" {
				return ch.Message
			}
		}
	}
	if r := apimeta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition); r != nil {
		return r.Message
	}
	return "the analysis failed"
}

func phaseNote(p sluicev1beta1.CanaryPhase) string {
	switch p {
	case sluicev1beta1.CanaryPhaseInitializing:
		return ": creating podinfo-primary and the routes"
	case sluicev1beta1.CanaryPhaseProgressing:
		return ": a new revision, analysed step by step"
	case sluicev1beta1.CanaryPhasePromoting:
		return ": copying the new revision to the primary"
	case sluicev1beta1.CanaryPhaseFinalising:
		return ": all traffic on the primary; the canary keeps its pods while in-flight requests drain"
	case sluicev1beta1.CanaryPhaseSucceeded:
		return ""
	case sluicev1beta1.CanaryPhaseFailed:
		return ": all traffic back to the primary; the canary is scaled to zero once it has drained"
	}
	return ""
}

func short(rev string) string {
	if i := strings.Index(rev, "@sha1:"); i >= 0 && len(rev) >= i+6+7 {
		return rev[:i+6+7]
	}
	return rev
}

// trim shortens a measured value such as 99.87654321 to 99.88.
func trim(v string) string {
	var f float64
	if _, err := fmt.Sscanf(v, "%g", &f); err != nil {
		return v
	}
	return fmt.Sprintf("%.2f", f)
}
