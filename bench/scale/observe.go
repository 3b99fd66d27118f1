package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// observer watches every Canary (as admin, not through the counting proxy)
// and stamps, with the benchmark's clock, when each release started, when
// each analysis step landed in status.history and when it finished. The
// API's own timestamps (lastStepTime, history[].time) have one-second
// resolution, too coarse for a one-second target.
type observer struct {
	mu      sync.Mutex
	phases  map[types.NamespacedName]sluicev1beta1.CanaryPhase
	tracks  map[types.NamespacedName]*track
	tracing bool
	since   time.Time
	changed chan struct{}
	// trails record every status change of every canary during a release
	// (a few lines each), so that the report can show the slowest one's.
	trails map[types.NamespacedName][]string
	// version is the image tag of the release traced; ready holds when each
	// Deployment ("ns/name") first ran it ready.
	version string
	ready   map[string]time.Time
}

// track is one canary's release as seen by the observer.
type track struct {
	provider string
	start    time.Time   // first seen Progressing
	steps    []time.Time // when history grew, one per step
	done     time.Time   // first seen Succeeded (or Failed) after start
	// When the target (scaled up) and the primary (promoted) first ran the
	// new version ready: the engine cannot step or finish before.
	targetReady, primaryReady time.Time
	failed                    bool
	waited                    bool // seen Waiting (concurrency limit) before starting
}

func startObserver(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) (*observer, error) {
	c, err := cache.New(cfg, cache.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("failed to create the observer's cache: %w", err)
	}
	inf, err := c.GetInformer(ctx, &sluicev1beta1.Canary{})
	if err != nil {
		return nil, fmt.Errorf("failed to watch Canaries: %w", err)
	}
	o := &observer{phases: map[types.NamespacedName]sluicev1beta1.CanaryPhase{}, changed: make(chan struct{}, 1)}
	handle := func(obj any) {
		if cn, ok := obj.(*sluicev1beta1.Canary); ok {
			o.seen(cn, time.Now())
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj any) { handle(obj) },
	}); err != nil {
		return nil, fmt.Errorf("failed to add the observer's handler: %w", err)
	}
	dinf, err := c.GetInformer(ctx, &appsv1.Deployment{})
	if err != nil {
		return nil, fmt.Errorf("failed to watch Deployments: %w", err)
	}
	dhandle := func(obj any) {
		if d, ok := obj.(*appsv1.Deployment); ok {
			o.deployment(d, time.Now())
		}
	}
	if _, err := dinf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    dhandle,
		UpdateFunc: func(_, obj any) { dhandle(obj) },
	}); err != nil {
		return nil, fmt.Errorf("failed to add the observer's handler: %w", err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the observer's cache did not sync")
	}
	return o, nil
}

func (o *observer) seen(c *sluicev1beta1.Canary, now time.Time) {
	k := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
	st := c.Status
	o.mu.Lock()
	defer func() {
		o.mu.Unlock()
		select {
		case o.changed <- struct{}{}:
		default:
		}
	}()
	o.phases[k] = st.Phase
	if !o.tracing {
		return
	}
	why := ""
	if cond := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ProgressingCondition); cond != nil {
		why = cond.Reason
	}
	o.trails[k] = append(o.trails[k], fmt.Sprintf("%7.2fs  rv=%-8s phase=%-12s weight=%-3d iterations=%d steps=%d progressing=%s",
		now.Sub(o.since).Seconds(), c.ResourceVersion, st.Phase, st.CanaryWeight, st.Iterations, len(st.History), why))
	t := o.tracks[k]
	if t == nil {
		t = &track{provider: c.Spec.Provider}
		o.tracks[k] = t
	}
	switch {
	case !t.done.IsZero():
		return
	case t.start.IsZero():
		switch st.Phase {
		case sluicev1beta1.CanaryPhaseWaiting:
			t.waited = true
		case sluicev1beta1.CanaryPhaseProgressing:
			t.start = now
		}
		return
	}
	for len(t.steps) < len(st.History) {
		t.steps = append(t.steps, now)
	}
	switch st.Phase {
	case sluicev1beta1.CanaryPhaseSucceeded:
		t.done = now
	case sluicev1beta1.CanaryPhaseFailed:
		t.done, t.failed = now, true
	}
}

// deployment records when a Deployment first runs the traced version ready,
// by the engine's rules (spec observed, every replica updated and available).
func (o *observer) deployment(d *appsv1.Deployment, now time.Time) {
	want := ptr.Deref(d.Spec.Replicas, 1)
	s := d.Status
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.tracing || len(d.Spec.Template.Spec.Containers) == 0 ||
		!strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, ":"+o.version) {
		return
	}
	if want < 1 || d.Generation > s.ObservedGeneration || s.UpdatedReplicas < want || s.Replicas > s.UpdatedReplicas || s.AvailableReplicas < want {
		return
	}
	k := d.Namespace + "/" + d.Name
	if _, ok := o.ready[k]; !ok {
		o.ready[k] = now
		// The trail of its canary says when its pods were ready.
		c := types.NamespacedName{Namespace: d.Namespace, Name: strings.TrimSuffix(d.Name, "-primary")}
		o.trails[c] = append(o.trails[c], fmt.Sprintf("%7.2fs  Deployment %s ready with the new version", now.Sub(o.since).Seconds(), d.Name))
	}
}

// trace starts recording the release of version on every canary, and every
// status change of each.
func (o *observer) trace(version string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.version, o.ready = version, map[string]time.Time{}
	o.tracks = map[types.NamespacedName]*track{}
	o.tracing, o.since = true, time.Now()
	o.trails = map[types.NamespacedName][]string{}
}

// finish stops recording and returns the tracks and the trails.
func (o *observer) finish() (map[types.NamespacedName]*track, map[types.NamespacedName][]string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tracing = false
	for k, t := range o.tracks {
		t.targetReady = o.ready[k.Namespace+"/"+k.Name]
		t.primaryReady = o.ready[k.Namespace+"/"+k.Name+"-primary"]
	}
	return o.tracks, o.trails
}

// countPhases counts the canaries whose phase is one of ps.
func (o *observer) countPhases(ps ...sluicev1beta1.CanaryPhase) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, p := range o.phases {
		for _, want := range ps {
			if p == want {
				n++
				break
			}
		}
	}
	return n
}

// finished counts the traced canaries that finished their release.
func (o *observer) finished() (done, failed int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, t := range o.tracks {
		if !t.done.IsZero() {
			done++
			if t.failed {
				failed++
			}
		}
	}
	return done, failed
}

// waitFor polls cond on every change (and each second) until it holds or ctx ends.
func (o *observer) waitFor(ctx context.Context, what string, cond func() bool) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s: %w", what, ctx.Err())
		case <-o.changed:
		case <-tick.C:
		}
	}
	return nil
}
