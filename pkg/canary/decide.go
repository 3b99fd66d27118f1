// Package canary is the canary engine: a controller-runtime reconciler that
// observes a Canary and its workloads from caches, decides the next step of
// the release in the pure function Decide, applies the resulting actions
// through small adapters, and patches the status once.
package canary

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// waitRetry is how soon a waiting canary (for a rollout slot, or for a
// workload without a watch event to wake it) looks again.
const waitRetry = 5 * time.Second

// Observation is what is true now, gathered from the caches (and, when
// Decide asks for them, from the checks).
type Observation struct {
	Now      time.Time
	Canary   *sluicev1beta1.Canary
	Provider string
	// Stalled, when set, is why the Canary cannot progress until its spec or
	// the cluster is fixed (unknown provider, missing target, ...).
	Stalled  *Reason
	Deleting bool

	Target  WorkloadState
	Primary WorkloadState
	// Baseline is the baseline Deployment (spec.analysis.baseline).
	Baseline WorkloadState
	// Routes are the weights read back from the routing objects; RoutesKnown
	// is false when they could not be read (objects not created yet).
	Routes      router.Routes
	RoutesKnown bool

	// SlotFree tells whether a new release may start under the concurrency limit.
	SlotFree bool
	// NewCookie and NewPrimaryCookie are fresh "<name>=<random>" values for
	// the session-affinity cookies.
	NewCookie        string
	NewPrimaryCookie string
	// Checks are the outcomes of the checks Decide asked for; nil before.
	Checks *CheckResults
	// Sources are the GitSync source annotations that may name the commit
	// of the release (see source.go).
	Sources Sources
}

// Reasons of the decisions that fail a release or end a deletion, shared
// by the conditions, the events and the tests.
const (
	reasonHoldExpired     = "HoldExpired"
	reasonPromotionFailed = "PromotionFailed"
)

// Reason is a condition reason and message.
type Reason struct {
	Reason  string
	Message string
}

// WorkloadState is what matters of the target or the primary workload.
type WorkloadState struct {
	Exists bool
	Ready  bool
	// NotReadyMessage says why the workload is not ready.
	NotReadyMessage string
	// NotReadyReason, when set, is the Progressing reason while the canary
	// is not ready, instead of CanaryNotReady: a failure the workload
	// reports (a Knative revision that failed) gets a reason of its own,
	// so its message is not hidden behind the first wait's.
	NotReadyReason string
	// TemplateHash is the hash of the pod template: for the target its own,
	// for the primary the target template hash it was last given.
	TemplateHash string
	// Configs are the checksums of the tracked ConfigMaps and Secrets the
	// target's pod template references (target only).
	Configs map[string]string
	// ConfigVersions are the resourceVersions those checksums were taken
	// at; status keeps them with the checksums so that a config's data is
	// read again only when it changes.
	ConfigVersions map[string]string
	// ScaledToZero is true when the workload runs no pods on purpose.
	ScaledToZero bool
}

// CheckRequest asks the reconciler to run checks before Decide goes on.
type CheckRequest struct {
	// Gates are the confirm-* webhook types to ask.
	Gates []string
	// Rollback asks the rollback webhooks.
	Rollback bool
	// Analysis is pre-rollout or rollout (with the metrics); empty for none.
	Analysis string
	// Delayed are the metrics not to check yet (initialDelay), with the
	// message of their Skipped result.
	Delayed map[string]string
}

// CheckResults are the outcomes of a CheckRequest.
type CheckResults struct {
	// GatesOpen holds, per gate type asked, whether every hook of it said yes.
	GatesOpen map[string]bool
	// RollbackRequested is true when a rollback webhook said yes.
	RollbackRequested bool
	// Checks are the outcomes of the analysis webhooks and metrics.
	Checks []sluicev1beta1.CheckResult
}

// ActionKind names something the reconciler does to the cluster.
type ActionKind string

// Actions, applied in the order Decide lists them.
const (
	// EnsureObjects creates what is missing (primary, config copies,
	// Services, primary autoscaler, routing objects) without touching a
	// primary's template or the current weights.
	EnsureObjects ActionKind = "EnsureObjects"
	// SetRoutes sets the weights through the router.
	SetRoutes ActionKind = "SetRoutes"
	// ScaleTargetUp gives the target the primary's replicas (or removes a
	// DaemonSet's scale-to-zero node selector).
	ScaleTargetUp ActionKind = "ScaleTargetUp"
	// ScaleTargetToZero takes the target's pods away.
	ScaleTargetToZero ActionKind = "ScaleTargetToZero"
	// PromotePrimary copies the target's pod template and configs onto the
	// primary and updates the primary autoscaler.
	PromotePrimary ActionKind = "PromotePrimary"
	// RunPostRollout calls the post-rollout webhooks; failures are events.
	RunPostRollout ActionKind = "RunPostRollout"
	// RestoreApex points the apex Service at the target and releases it
	// from the Canary, so it outlives the Canary.
	RestoreApex ActionKind = "RestoreApex"
	// RestoreTargetTemplate gives the target the primary's pod template
	// (the promoted revision) back, with the target's own selector label
	// and config names.
	RestoreTargetTemplate ActionKind = "RestoreTargetTemplate"
	// ReleasePrimary releases the primary, its config copies and its
	// autoscaler from the Canary, and points the apex Service at the
	// primary's pods, released too: they outlive the Canary.
	ReleasePrimary ActionKind = "ReleasePrimary"
	// FinalizeRoutes leaves the routing objects serving the apex Service
	// only: pre-existing ones restored, those Sluice created released.
	FinalizeRoutes ActionKind = "FinalizeRoutes"
	// EnsureBaseline creates or updates the baseline Deployment and
	// Service (spec.analysis.baseline; baseline.go).
	EnsureBaseline ActionKind = "EnsureBaseline"
	// RemoveBaseline deletes them after the release.
	RemoveBaseline ActionKind = "RemoveBaseline"
)

// Action is one step of work for the reconciler.
type Action struct {
	Kind   ActionKind
	Routes router.Routes
}

// Event is a Kubernetes event to record.
type Event struct {
	Warning bool
	Reason  string
	Message string
	// Detail is appended to the Kubernetes event's message only, not to
	// what event webhooks and alerts receive: the step a traffic-shifting
	// event completes (exportSteps), so that a weighted step costs one
	// event write rather than two.
	Detail string
}

// Decision is what Decide concluded.
type Decision struct {
	Status          sluicev1beta1.CanaryStatus
	Actions         []Action
	Events          []Event
	NeedChecks      *CheckRequest
	RequeueAfter    time.Duration
	RemoveFinalizer bool
	// NeedsSlot is true when the decision depended on Observation.SlotFree
	// (a new revision may start): the reconciler counts the rollout slots
	// only then, and decides again when none is free.
	NeedsSlot bool
}

// decider carries one Decide call.
type decider struct {
	o  Observation
	c  *sluicev1beta1.Canary
	st *sluicev1beta1.CanaryStatus
	d  Decision
	// stalled and waitReason feed the conditions.
	stalled    *Reason
	waitReason *Reason
}

// Decide holds every transition of the release state machine. It is pure:
// the same observation always gives the same decision.
func Decide(o Observation) Decision {
	if behind := statusAhead(o); behind > 0 && !o.Deleting {
		// The status was written at a later time than this observation's
		// (a new leader whose clock is behind the last one's): intervals
		// and deadlines would be measured backwards. Nothing is done until
		// the clock catches up; deletion goes on, it must not wait.
		return Decision{Status: *o.Canary.Status.DeepCopy(), RequeueAfter: min(behind, waitRetry)}
	}
	x := &decider{o: o, c: o.Canary}
	x.d.Status = *o.Canary.Status.DeepCopy()
	x.st = &x.d.Status
	x.st.ObservedGeneration = o.Canary.Generation
	switch {
	case o.Deleting:
		x.terminate()
	case o.Stalled != nil:
		x.stalled = o.Stalled
	case o.Canary.Spec.Suspend:
		x.waitReason = &Reason{Reason: "Suspended", Message: "spec.suspend is true: releases are paused"}
	default:
		x.act(Action{Kind: EnsureObjects})
		x.run()
		x.healRoutes()
		x.setSource()
	}
	if x.d.NeedChecks != nil {
		// Nothing is applied until the checks are known.
		return Decision{Status: *o.Canary.Status.DeepCopy(), NeedChecks: x.d.NeedChecks, NeedsSlot: x.d.NeedsSlot}
	}
	// A config whose data is what status already holds (its object changed
	// otherwise, e.g. a label) is recorded at its new version, so that its
	// data is not read again on every reconcile.
	if x.o.Target.Exists && x.o.Target.ConfigVersions != nil && !configsChanged(x.o.Target.Configs, x.st.TrackedConfigs) {
		x.st.TrackedConfigVersions = x.o.Target.ConfigVersions
	}
	x.recordDelivery()
	setConditions(x.st, x.c, x.o, x.stalled, x.waitReason)
	return x.d
}

// statusAhead is how far the latest time the status records is ahead of
// the observation's, or 0.
func statusAhead(o Observation) time.Duration {
	st := &o.Canary.Status
	var ahead time.Duration
	for _, t := range []*metav1.Time{st.LastTransitionTime, st.LastStepTime, st.NotReadySince, st.HeldSince, st.InconclusiveSince} {
		if t != nil {
			ahead = max(ahead, t.Sub(o.Now))
		}
	}
	return ahead
}

func (x *decider) run() {
	switch x.st.Phase {
	case "", sluicev1beta1.CanaryPhaseInitializing:
		x.initialize()
	case sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseWaitingPromotion:
		x.analyse()
	case sluicev1beta1.CanaryPhasePromoting:
		x.promote()
	case sluicev1beta1.CanaryPhaseFinalising:
		x.finalise()
	default: // Initialized, Waiting, Succeeded, Failed, and Terminating/Terminated after a cancelled deletion
		x.idle()
	}
}

func (x *decider) act(a Action) { x.d.Actions = append(x.d.Actions, a) }

// idleResync is how often an idle Canary is looked at again, so that a hand
// edit of its routes is corrected even when nothing else changes.
const idleResync = 5 * time.Minute

// healRoutes puts back the weights the status says traffic is at when the
// routing objects read back something else (a hand edit), unless this
// decision already sets routes.
func (x *decider) healRoutes() {
	if x.d.NeedChecks != nil || !x.o.RoutesKnown {
		return
	}
	for _, a := range x.d.Actions {
		if a.Kind == SetRoutes {
			return
		}
	}
	switch x.st.Phase {
	case "", sluicev1beta1.CanaryPhaseInitializing:
		return
	}
	want := router.Routes{PrimaryWeight: 100 - x.st.CanaryWeight - x.st.BaselineWeight, CanaryWeight: x.st.CanaryWeight,
		BaselineWeight: x.st.BaselineWeight, Mirrored: x.st.Mirrored}
	if x.o.Routes != want {
		x.act(Action{Kind: SetRoutes, Routes: want})
		x.event(true, "RoutesRestored", fmt.Sprintf("The routes read %s instead of %s: restored", x.o.Routes, want))
	}
	if !activePhases[x.st.Phase] {
		x.requeue(idleResync)
	}
}

func (x *decider) setRoutes(primary, canary int32, mirrored bool) {
	r := x.withBaseline(router.Routes{PrimaryWeight: primary, CanaryWeight: canary, Mirrored: mirrored})
	x.act(Action{Kind: SetRoutes, Routes: r})
	x.st.CanaryWeight = canary
	x.st.BaselineWeight = r.BaselineWeight
	x.st.Mirrored = mirrored
}

func (x *decider) event(warning bool, reason, msg string) {
	x.d.Events = append(x.d.Events, Event{Warning: warning, Reason: reason, Message: msg})
}

// setPhase changes the phase, stamps the transition time and records an event.
func (x *decider) setPhase(p sluicev1beta1.CanaryPhase, warning bool, msg string) {
	if x.st.Phase != p {
		now := metav1.NewTime(x.o.Now)
		x.st.LastTransitionTime = &now
		x.event(warning, string(p), msg)
	}
	x.st.Phase = p
}

// requeue asks to be called again after d at the latest.
func (x *decider) requeue(d time.Duration) {
	if d <= 0 {
		d = time.Millisecond
	}
	if x.d.RequeueAfter == 0 || d < x.d.RequeueAfter {
		x.d.RequeueAfter = d
	}
}

func (x *decider) now() *metav1.Time {
	t := metav1.NewTime(x.o.Now)
	return &t
}

// deadlineLeft starts the not-ready clock if needed and returns the time
// left before progressDeadlineSeconds is exceeded.
func (x *decider) deadlineLeft() time.Duration {
	if x.st.NotReadySince == nil {
		x.st.NotReadySince = x.now()
	}
	return x.st.NotReadySince.Add(x.c.ProgressDeadline()).Sub(x.o.Now)
}

// configsChanged compares checksums; a config no longer referenced, or a new
// one, is a change.
func configsChanged(now, tracked map[string]string) bool {
	if len(now) != len(tracked) {
		return true
	}
	for k, v := range now {
		if tracked[k] != v {
			return true
		}
	}
	return false
}

// newRevision tells whether the target differs from the revision in status.
func (x *decider) newRevision() bool {
	return x.o.Target.TemplateHash != x.st.LastAppliedSpec || configsChanged(x.o.Target.Configs, x.st.TrackedConfigs)
}

// revertedToPromoted tells whether the target is back on the promoted pod template.
func (x *decider) revertedToPromoted() bool {
	return x.st.LastPromotedSpec != "" && x.o.Target.TemplateHash == x.st.LastPromotedSpec &&
		!configsChanged(x.o.Target.Configs, x.st.TrackedConfigs)
}

// request returns the value of a manual-control annotation when it is a new
// request, and marks it handled when handle is true.
func (x *decider) request(annotation string, handle bool) bool {
	v := x.c.Annotations[annotation]
	if v == "" {
		return false
	}
	if x.st.HandledRequests == nil {
		x.st.HandledRequests = &sluicev1beta1.HandledRequests{}
	}
	h := x.st.HandledRequests
	field := map[string]*string{
		sluicev1beta1.PromoteAnnotation: &h.Promote,
		sluicev1beta1.AbortAnnotation:   &h.Abort,
		sluicev1beta1.RetryAnnotation:   &h.Retry,
	}[annotation]
	if *field == v {
		return false
	}
	if handle {
		*field = v
	}
	return true
}

// recordStep appends a step to the bounded history (spec.analysis.historyLimit).
func (x *decider) recordStep(checks []sluicev1beta1.CheckResult, msg string) {
	if note := dryRunNote(checks); note != "" {
		msg += "; " + note
	}
	x.st.History = append(x.st.History, sluicev1beta1.CanaryStep{
		Time: metav1.NewTime(x.o.Now), Phase: x.st.Phase, Weight: x.st.CanaryWeight,
		Iteration: x.st.Iterations, Checks: checks, Message: truncate(msg, 1024),
	})
	if n, limit := len(x.st.History), x.c.HistoryLimit(); n > limit {
		x.st.History = x.st.History[n-limit:]
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
