package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// flaggerObserver watches Flagger's Canaries as admin (not through the
// counting proxy) and stamps, with the benchmark's clock, when each release
// started (first seen Progressing) and finished (Succeeded or Failed).
// Flagger keeps no step history in status, so steps are not timed here; the
// table compares what both controllers expose.
type flaggerObserver struct {
	mu      sync.Mutex
	phases  map[types.NamespacedName]string
	tracks  map[types.NamespacedName]*track
	tracing bool
	changed chan struct{}
}

// Flagger's phases (flagger.app/v1beta1 CanaryPhase).
const (
	flaggerInitialized = "Initialized"
	flaggerProgressing = "Progressing"
	flaggerSucceeded   = "Succeeded"
	flaggerFailed      = "Failed"
)

func startFlaggerObserver(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) (*flaggerObserver, error) {
	c, err := cache.New(cfg, cache.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("failed to create the Flagger observer's cache: %w", err)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(flaggerCanaryGVK)
	inf, err := c.GetInformer(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("failed to watch Flagger Canaries: %w", err)
	}
	o := &flaggerObserver{phases: map[types.NamespacedName]string{}, changed: make(chan struct{}, 1)}
	handle := func(obj any) {
		if cn, ok := obj.(*unstructured.Unstructured); ok {
			phase, _, _ := unstructured.NestedString(cn.Object, "status", "phase")
			o.seen(types.NamespacedName{Namespace: cn.GetNamespace(), Name: cn.GetName()}, phase, time.Now())
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj any) { handle(obj) },
	}); err != nil {
		return nil, fmt.Errorf("failed to add the Flagger observer's handler: %w", err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the Flagger observer's cache did not sync")
	}
	return o, nil
}

// seen records one observed phase of canary k at now.
func (o *flaggerObserver) seen(k types.NamespacedName, phase string, now time.Time) {
	o.mu.Lock()
	defer func() {
		o.mu.Unlock()
		select {
		case o.changed <- struct{}{}:
		default:
		}
	}()
	o.phases[k] = phase
	if !o.tracing {
		return
	}
	t := o.tracks[k]
	if t == nil {
		t = &track{}
		o.tracks[k] = t
	}
	switch {
	case !t.done.IsZero():
	case t.start.IsZero():
		if phase == flaggerProgressing {
			t.start = now
		}
	case phase == flaggerSucceeded:
		t.done = now
	case phase == flaggerFailed:
		t.done, t.failed = now, true
	}
}

// trace starts recording releases.
func (o *flaggerObserver) trace() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tracks, o.tracing = map[types.NamespacedName]*track{}, true
}

// finish stops recording and returns the tracks.
func (o *flaggerObserver) finish() map[types.NamespacedName]*track {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tracing = false
	return o.tracks
}

// count is how many canaries are in one of phases.
func (o *flaggerObserver) count(phases ...string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, p := range o.phases {
		for _, want := range phases {
			if p == want {
				n++
				break
			}
		}
	}
	return n
}

// finished counts the traced canaries that finished their release.
func (o *flaggerObserver) finished() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, t := range o.tracks {
		if !t.done.IsZero() {
			n++
		}
	}
	return n
}

// waitFor polls cond on every change (and each second) until it holds or ctx ends.
func (o *flaggerObserver) waitFor(ctx context.Context, what string, cond func() bool) error {
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
