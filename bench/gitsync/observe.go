package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// observer watches every GitSync (as admin, not through the counting
// proxy) and stamps, with the benchmark's clock, when each was first seen
// Ready at a revision. The status's own times have one-second resolution.
type observer struct {
	mu    sync.Mutex
	state map[types.NamespacedName]gsState
}

// gsState is what a GitSync's status last said, and since when.
type gsState struct {
	revision  string // lastAppliedRevision
	ready     bool
	inventory int
	failure   string // lastFailureReason: lastFailureMessage
	since     time.Time
}

func startObserver(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) (*observer, error) {
	c, err := cache.New(cfg, cache.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("failed to create the observer's cache: %w", err)
	}
	inf, err := c.GetInformer(ctx, &sluicev1beta1.GitSync{})
	if err != nil {
		return nil, fmt.Errorf("failed to watch GitSyncs: %w", err)
	}
	o := &observer{state: map[types.NamespacedName]gsState{}}
	handle := func(obj any) {
		if gs, ok := obj.(*sluicev1beta1.GitSync); ok {
			o.seen(gs, time.Now())
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj any) { handle(obj) },
	}); err != nil {
		return nil, fmt.Errorf("failed to add the observer's handler: %w", err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, errors.New("the observer's cache did not sync")
	}
	return o, nil
}

func (o *observer) seen(gs *sluicev1beta1.GitSync, now time.Time) {
	k := types.NamespacedName{Namespace: gs.Namespace, Name: gs.Name}
	st := gsState{
		revision:  gs.Status.LastAppliedRevision,
		ready:     meta.IsStatusConditionPresentAndEqual(gs.Status.Conditions, sluicev1beta1.ReadyCondition, metav1.ConditionTrue),
		inventory: len(gs.Status.Inventory),
	}
	if gs.Status.LastFailureReason != "" {
		st.failure = gs.Status.LastFailureReason + ": " + gs.Status.LastFailureMessage
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	prev, ok := o.state[k]
	st.since = now
	if ok && prev.revision == st.revision && prev.ready == st.ready {
		st.since = prev.since
	}
	o.state[k] = st
}

// readyAt tells when every key was first seen Ready at revision: the
// latest of those times, or false when one is not there yet.
func (o *observer) readyAt(keys []types.NamespacedName, revision string) (time.Time, int, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var last time.Time
	n := 0
	for _, k := range keys {
		st, ok := o.state[k]
		if !ok || !st.ready || st.revision != revision {
			continue
		}
		n++
		if st.since.After(last) {
			last = st.since
		}
	}
	return last, n, n == len(keys)
}

// get returns the last state of k.
func (o *observer) get(k types.NamespacedName) gsState {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.state[k]
}

// waitReady waits until every key is Ready at revision and returns when
// the last one became so; it logs progress and gives up at deadline,
// naming a GitSync that is not there and why.
func (o *observer) waitReady(ctx context.Context, keys []types.NamespacedName, revision string, deadline time.Time) (time.Time, error) {
	lastLog := time.Now()
	for {
		at, n, ok := o.readyAt(keys, revision)
		if ok {
			return at, nil
		}
		if time.Since(lastLog) > 15*time.Second {
			lastLog = time.Now()
			logf("%d/%d GitSyncs Ready at %s", n, len(keys), short(revision))
		}
		if time.Now().After(deadline) {
			for _, k := range keys {
				if st := o.get(k); !st.ready || st.revision != revision {
					return time.Time{}, fmt.Errorf("%d/%d GitSyncs Ready at %s by the deadline; %s is at %q ready=%v %s",
						n, len(keys), short(revision), k, short(st.revision), st.ready, st.failure)
				}
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// short is a revision with its sha cut to 12 characters.
func short(rev string) string {
	if len(rev) > 12+len("main@sha1:") {
		return rev[:12+len("main@sha1:")]
	}
	return rev
}
