package canary

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Every package-level identifier of this file starts with dt (decide test)
// so that it cannot collide with the helpers of the other tests of package
// canary.

// dtNow is the fixed time of every observation (sequences move on from it).
var dtNow = time.Date(2025, time.March, 14, 12, 0, 0, 0, time.UTC)

const (
	dtHashA    = "aaaa0000aaaa0000" // the promoted revision, run by the primary
	dtHashB    = "bbbb1111bbbb1111" // the revision under release
	dtHashC    = "cccc2222cccc2222" // a newer revision
	dtInterval = time.Minute        // analysis interval of every test analysis
)

// Phase shorthands.
const (
	dtPhInitializing     = sluicev1beta1.CanaryPhaseInitializing
	dtPhInitialized      = sluicev1beta1.CanaryPhaseInitialized
	dtPhWaiting          = sluicev1beta1.CanaryPhaseWaiting
	dtPhProgressing      = sluicev1beta1.CanaryPhaseProgressing
	dtPhWaitingPromotion = sluicev1beta1.CanaryPhaseWaitingPromotion
	dtPhPromoting        = sluicev1beta1.CanaryPhasePromoting
	dtPhFinalising       = sluicev1beta1.CanaryPhaseFinalising
	dtPhSucceeded        = sluicev1beta1.CanaryPhaseSucceeded
	dtPhFailed           = sluicev1beta1.CanaryPhaseFailed
	dtPhTerminating      = sluicev1beta1.CanaryPhaseTerminating
	dtPhTerminated       = sluicev1beta1.CanaryPhaseTerminated
)

// Webhook type shorthands.
const (
	dtHookConfirmRollout = sluicev1beta1.WebhookConfirmRollout
	dtHookPreRollout     = sluicev1beta1.WebhookPreRollout
	dtHookRollout        = sluicev1beta1.WebhookRollout
	dtHookConfirmTraffic = sluicev1beta1.WebhookConfirmTrafficIncrease
	dtHookConfirmPromote = sluicev1beta1.WebhookConfirmPromotion
	dtHookRollback       = sluicev1beta1.WebhookRollback
	dtHookPostRollout    = sluicev1beta1.WebhookPostRollout
	dtAnnotationPromote  = sluicev1beta1.PromoteAnnotation
	dtAnnotationAbort    = sluicev1beta1.AbortAnnotation
	dtAnnotationRetry    = sluicev1beta1.RetryAnnotation
	dtProviderIstio      = sluicev1beta1.ProviderIstio
	dtProviderKubernetes = sluicev1beta1.ProviderKubernetes
	dtDefaultDeadline    = sluicev1beta1.DefaultProgressDeadlineSeconds * time.Second
)

// ---------------------------------------------------------------------------
// Analyses, one per strategy.

func dtAnalysis() *sluicev1beta1.CanaryAnalysis {
	return &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: dtInterval}, Threshold: 2}
}

// dtProgressive is a progressive canary: stepWeight 10 up to maxWeight 30.
func dtProgressive() *sluicev1beta1.CanaryAnalysis {
	a := dtAnalysis()
	a.StepWeight, a.MaxWeight = 10, 30
	return a
}

// dtProgressiveMirror mirrors for one step before shifting weight.
func dtProgressiveMirror() *sluicev1beta1.CanaryAnalysis {
	a := dtProgressive()
	a.Mirror = true
	return a
}

// dtStepWeights is a progressive canary along the ladder 5, 25, 50.
func dtStepWeights() *sluicev1beta1.CanaryAnalysis {
	a := dtAnalysis()
	a.StepWeights = []int32{5, 25, 50}
	return a
}

// dtBlueGreen is blue/green with 3 iterations.
func dtBlueGreen() *sluicev1beta1.CanaryAnalysis {
	a := dtAnalysis()
	a.Iterations = 3
	return a
}

// dtBlueGreenMirror is blue/green with 3 mirrored iterations.
func dtBlueGreenMirror() *sluicev1beta1.CanaryAnalysis {
	a := dtBlueGreen()
	a.Mirror = true
	return a
}

// dtAbTesting is A/B testing with 2 iterations.
func dtAbTesting() *sluicev1beta1.CanaryAnalysis {
	a := dtAnalysis()
	a.Iterations = 2
	a.Match = []sluicev1beta1.HTTPMatchRequest{{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}}}}
	return a
}

// dtStepWeightOnly has only a stepWeight: blue/green with 10 iterations under
// the kubernetes provider.
func dtStepWeightOnly() *sluicev1beta1.CanaryAnalysis {
	a := dtAnalysis()
	a.StepWeight = 10
	return a
}

// ---------------------------------------------------------------------------
// Canary builder.

type dtCanaryOpt func(*sluicev1beta1.Canary)

func dtCanary(a *sluicev1beta1.CanaryAnalysis, st sluicev1beta1.CanaryStatus, opts ...dtCanaryOpt) *sluicev1beta1.Canary {
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test", Generation: 3},
		Spec: sluicev1beta1.CanarySpec{
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   sluicev1beta1.CanaryService{Port: 9898},
			Analysis:  a,
		},
		Status: st,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// dtHooks adds one webhook of each given type.
func dtHooks(types ...string) dtCanaryOpt {
	return func(c *sluicev1beta1.Canary) {
		for _, t := range types {
			c.Spec.Analysis.Webhooks = append(c.Spec.Analysis.Webhooks,
				sluicev1beta1.CanaryWebhook{Type: t, Name: t + "-hook", URL: "http://loadtester.test/" + t})
		}
	}
}

func dtAnnotate(k, v string) dtCanaryOpt {
	return func(c *sluicev1beta1.Canary) {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[k] = v
	}
}

func dtSkipAnalysis() dtCanaryOpt {
	return func(c *sluicev1beta1.Canary) { c.Spec.SkipAnalysis = true }
}
func dtRevertOnDeletion() dtCanaryOpt {
	return func(c *sluicev1beta1.Canary) { c.Spec.RevertOnDeletion = true }
}
func dtSuspended() dtCanaryOpt { return func(c *sluicev1beta1.Canary) { c.Spec.Suspend = true } }

func dtProgressDeadline(seconds int32) dtCanaryOpt {
	return func(c *sluicev1beta1.Canary) { c.Spec.ProgressDeadlineSeconds = ptr.To(seconds) }
}

func dtStepWeightPromotion(w int32) dtCanaryOpt {
	return func(c *sluicev1beta1.Canary) { c.Spec.Analysis.StepWeightPromotion = w }
}

func dtSessionAffinity() dtCanaryOpt {
	return func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.SessionAffinity = &sluicev1beta1.SessionAffinity{CookieName: "canary-cookie", MaxAge: 3600}
	}
}

// ---------------------------------------------------------------------------
// Status builder.

type dtStatusOpt func(*sluicev1beta1.CanaryStatus)

// dtStatus builds the status of a Canary in the given phase: nothing before
// initialization, hashA applied and promoted when idle, and hashB under
// release over the promoted hashA otherwise, with the last step one interval
// ago (so the next step is due now).
func dtStatus(phase sluicev1beta1.CanaryPhase, opts ...dtStatusOpt) sluicev1beta1.CanaryStatus {
	st := sluicev1beta1.CanaryStatus{Phase: phase}
	switch phase {
	case "", dtPhInitializing:
	case dtPhInitialized, dtPhSucceeded, dtPhWaiting:
		st.LastAppliedSpec, st.LastPromotedSpec = dtHashA, dtHashA
	default:
		st.LastAppliedSpec, st.LastPromotedSpec = dtHashB, dtHashA
		st.LastStepTime = dtAgo(dtInterval)
	}
	if st.LastAppliedSpec != "" {
		st.Revision = revisionOf(st.LastAppliedSpec, nil)
	}
	for _, o := range opts {
		o(&st)
	}
	return st
}

func dtAgo(d time.Duration) *metav1.Time {
	t := metav1.NewTime(dtNow.Add(-d))
	return &t
}

func dtWeight(w int32) dtStatusOpt { return func(s *sluicev1beta1.CanaryStatus) { s.CanaryWeight = w } }
func dtIterations(n int32) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) { s.Iterations = n }
}
func dtFailedChecks(n int32) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) { s.FailedChecks = n }
}
func dtMirrored() dtStatusOpt { return func(s *sluicev1beta1.CanaryStatus) { s.Mirrored = true } }

// dtLastStep sets the last analysis step d ago.
func dtLastStep(d time.Duration) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) { s.LastStepTime = dtAgo(d) }
}
func dtNeverStepped() dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) { s.LastStepTime = nil }
}

// dtNotReadyFor starts the not-ready clock d ago.
func dtNotReadyFor(d time.Duration) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) { s.NotReadySince = dtAgo(d) }
}

// dtApplied sets the revision under release.
func dtApplied(h string) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) {
		s.LastAppliedSpec = h
		s.Revision = revisionOf(h, s.TrackedConfigs)
	}
}

func dtTrackedConfigs(m map[string]string) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) {
		s.TrackedConfigs = m
		s.Revision = revisionOf(s.LastAppliedSpec, m)
	}
}

func dtHandled(h sluicev1beta1.HandledRequests) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) { s.HandledRequests = &h }
}

func dtCookie(v string) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) { s.SessionAffinityCookie = v }
}

func dtCondition(t string, st metav1.ConditionStatus, reason string) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) {
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: t, Status: st, Reason: reason, Message: reason, LastTransitionTime: metav1.NewTime(dtNow.Add(-time.Hour))})
	}
}

// ---------------------------------------------------------------------------
// Observation builder.

type dtObsOpt func(*Observation)

// dtObserve builds what the reconciler would see for c: both workloads exist
// and are ready, the target runs the revision in status (lastAppliedSpec),
// the primary the promoted one (or the applied one once promotion began),
// the target is scaled to zero outside of a release, and a slot is free.
func dtObserve(c *sluicev1beta1.Canary, opts ...dtObsOpt) Observation {
	st := c.Status
	target, primary := st.LastAppliedSpec, st.LastPromotedSpec
	if target == "" {
		target = dtHashA
	}
	if primary == "" {
		primary = dtHashA
	}
	scaled := true
	switch st.Phase {
	case dtPhProgressing, dtPhWaitingPromotion:
		scaled = false
	case dtPhPromoting, dtPhFinalising:
		scaled = false
		primary = st.LastAppliedSpec
	}
	o := Observation{
		Now:      dtNow,
		Canary:   c,
		Provider: dtProviderIstio,
		SlotFree: true,
		Target: WorkloadState{Exists: true, Ready: true, TemplateHash: target,
			Configs: st.TrackedConfigs, ScaledToZero: scaled},
		Primary: WorkloadState{Exists: true, Ready: true, TemplateHash: primary},
	}
	for _, f := range opts {
		f(&o)
	}
	return o
}

func dtAt(t time.Time) dtObsOpt            { return func(o *Observation) { o.Now = t } }
func dtTargetHash(h string) dtObsOpt       { return func(o *Observation) { o.Target.TemplateHash = h } }
func dtPrimaryHash(h string) dtObsOpt      { return func(o *Observation) { o.Primary.TemplateHash = h } }
func dtTargetScaledToZero(v bool) dtObsOpt { return func(o *Observation) { o.Target.ScaledToZero = v } }
func dtTargetMissing() dtObsOpt            { return func(o *Observation) { o.Target = WorkloadState{} } }
func dtPrimaryMissing() dtObsOpt           { return func(o *Observation) { o.Primary = WorkloadState{} } }
func dtSlotBusy() dtObsOpt                 { return func(o *Observation) { o.SlotFree = false } }
func dtNewCookie(v string) dtObsOpt        { return func(o *Observation) { o.NewCookie = v } }
func dtProvider(p string) dtObsOpt         { return func(o *Observation) { o.Provider = p } }
func dtDeleting() dtObsOpt                 { return func(o *Observation) { o.Deleting = true } }
func dtWithChecks(r *CheckResults) dtObsOpt {
	return func(o *Observation) { o.Checks = r }
}
func dtStalledBy(reason, msg string) dtObsOpt {
	return func(o *Observation) { o.Stalled = &Reason{Reason: reason, Message: msg} }
}
func dtTargetConfigs(m map[string]string) dtObsOpt {
	return func(o *Observation) { o.Target.Configs = m }
}
func dtTargetNotReady(msg string) dtObsOpt {
	return func(o *Observation) { o.Target.Ready, o.Target.NotReadyMessage = false, msg }
}
func dtPrimaryNotReady(msg string) dtObsOpt {
	return func(o *Observation) { o.Primary.Ready, o.Primary.NotReadyMessage = false, msg }
}

// ---------------------------------------------------------------------------
// Check results.

func dtMetric(outcome sluicev1beta1.CheckOutcome) sluicev1beta1.CheckResult {
	r := sluicev1beta1.CheckResult{Name: "request-success-rate", Kind: "metric", Outcome: outcome}
	if outcome != sluicev1beta1.CheckPassed {
		r.Message = "99.1 < 99.5"
	}
	return r
}

func dtWebhook(outcome sluicev1beta1.CheckOutcome) sluicev1beta1.CheckResult {
	return sluicev1beta1.CheckResult{Name: "load-test", Kind: "webhook", Outcome: outcome}
}

func dtResults(checks ...sluicev1beta1.CheckResult) *CheckResults {
	return &CheckResults{Checks: checks}
}

func dtPassing() *CheckResults {
	return dtResults(dtMetric(sluicev1beta1.CheckPassed), dtWebhook(sluicev1beta1.CheckPassed))
}

// dtGated adds a gate answer to r.
func dtGated(r *CheckResults, gate string, open bool) *CheckResults {
	if r.GatesOpen == nil {
		r.GatesOpen = map[string]bool{}
	}
	r.GatesOpen[gate] = open
	return r
}

func dtRollbackRequested() *CheckResults {
	r := dtPassing()
	r.RollbackRequested = true
	return r
}

// ---------------------------------------------------------------------------
// Expectations.

func dtActs(kinds ...ActionKind) []ActionKind {
	if len(kinds) == 0 {
		return nil
	}
	return kinds
}

func dtEvs(reasons ...string) []string {
	if len(reasons) == 0 {
		return nil
	}
	return reasons
}

func dtRoutes(primary, canary int32) *router.Routes {
	return &router.Routes{PrimaryWeight: primary, CanaryWeight: canary}
}

func dtMirroredRoutes(primary, canary int32) *router.Routes {
	return &router.Routes{PrimaryWeight: primary, CanaryWeight: canary, Mirrored: true}
}

// dtConds are the expected conditions: Ready, Progressing (with its reason),
// Promoted, and the reason of Stalled ("" when it must be absent).
type dtConds struct {
	ready, progressing, promoted bool
	reason                       string
	stalled                      string
}

// settled: the latest revision is promoted and nothing runs.
func dtSettled(phase sluicev1beta1.CanaryPhase) dtConds {
	return dtConds{ready: true, promoted: true, reason: string(phase)}
}

// releasing: a release runs (or waits), with reason the Progressing reason.
func dtReleasing(reason string) dtConds { return dtConds{progressing: true, reason: reason} }

// halted: nothing runs and the latest revision is not promoted (Failed, ...).
func dtHalted(phase sluicev1beta1.CanaryPhase) dtConds { return dtConds{reason: string(phase)} }

// failed: the release failed; Stalled (kstatus Failed) says why.
func dtFailed(stalled string) dtConds { return dtConds{reason: string(dtPhFailed), stalled: stalled} }

type dtDecideCase struct {
	name string
	obs  Observation

	// wantChecks, when set, are the checks asked for; nothing else happens.
	wantChecks *CheckRequest

	wantPhase        sluicev1beta1.CanaryPhase
	wantWeight       int32
	wantRoutes       *router.Routes // routes of the SetRoutes action; nil when none
	wantIterations   int32
	wantFailedChecks int32
	wantActions      []ActionKind
	wantRequeue      time.Duration
	wantEvents       []string
	wantConds        dtConds
	wantFinalizerOff bool
	// check makes extra assertions.
	check func(g Gomega, d Decision)
}

func dtRunCases(t *testing.T, cases []dtDecideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			before := tc.obs.Canary.DeepCopy()
			d := Decide(tc.obs)
			dtExpectDecision(g, tc, d)
			g.Expect(tc.obs.Canary).To(Equal(before), "Decide must not mutate the Canary")
		})
	}
}

func dtExpectDecision(g Gomega, tc dtDecideCase, d Decision) {
	if tc.wantChecks != nil {
		g.Expect(d.NeedChecks).To(Equal(tc.wantChecks))
		g.Expect(d.Actions).To(BeEmpty(), "nothing is applied until the checks are known")
		g.Expect(d.Events).To(BeEmpty())
		g.Expect(d.RequeueAfter).To(BeZero())
		g.Expect(d.RemoveFinalizer).To(BeFalse())
		g.Expect(d.Status).To(Equal(tc.obs.Canary.Status), "the status is unchanged until the checks are known")
		return
	}
	g.Expect(d.NeedChecks).To(BeNil(), "no checks expected")
	g.Expect(d.Status.Phase).To(Equal(tc.wantPhase), "phase")
	g.Expect(d.Status.CanaryWeight).To(Equal(tc.wantWeight), "status.canaryWeight")
	g.Expect(d.Status.Iterations).To(Equal(tc.wantIterations), "status.iterations")
	g.Expect(d.Status.FailedChecks).To(Equal(tc.wantFailedChecks), "status.failedChecks")
	g.Expect(dtKinds(d.Actions)).To(Equal(tc.wantActions), "actions")
	g.Expect(dtSetRoutesOf(d.Actions)).To(Equal(tc.wantRoutes), "routes of SetRoutes")
	if tc.wantRoutes != nil {
		g.Expect(d.Status.Mirrored).To(Equal(tc.wantRoutes.Mirrored), "status.mirrored")
	}
	g.Expect(d.RequeueAfter).To(Equal(tc.wantRequeue), "requeueAfter")
	g.Expect(dtReasons(d.Events)).To(Equal(tc.wantEvents), "events")
	g.Expect(d.RemoveFinalizer).To(Equal(tc.wantFinalizerOff), "removeFinalizer")
	g.Expect(d.Status.ObservedGeneration).To(Equal(tc.obs.Canary.Generation))
	dtExpectConds(g, d.Status, tc.wantConds)
	if tc.check != nil {
		tc.check(g, d)
	}
}

func dtExpectConds(g Gomega, st sluicev1beta1.CanaryStatus, w dtConds) {
	is := func(t string, want bool) *metav1.Condition {
		c := meta.FindStatusCondition(st.Conditions, t)
		g.Expect(c).NotTo(BeNil(), "condition %s", t)
		status := metav1.ConditionFalse
		if want {
			status = metav1.ConditionTrue
		}
		g.Expect(c.Status).To(Equal(status), "condition %s: %+v", t, *c)
		g.Expect(c.ObservedGeneration).To(Equal(int64(3)), "condition %s observedGeneration", t)
		return c
	}
	ready := is(sluicev1beta1.ReadyCondition, w.ready)
	progressing := is(sluicev1beta1.ProgressingCondition, w.progressing)
	g.Expect(progressing.Reason).To(Equal(w.reason), "Progressing reason")
	is(sluicev1beta1.PromotedCondition, w.promoted)
	// Reconciling is Progressing for kstatus, never together with Stalled.
	reconciling := is(sluicev1beta1.ReconcilingCondition, w.progressing && w.stalled == "")
	if reconciling.Status == metav1.ConditionTrue {
		g.Expect(reconciling.Reason).To(Equal(w.reason), "Reconciling reason")
	}
	if w.stalled == "" {
		g.Expect(meta.FindStatusCondition(st.Conditions, sluicev1beta1.StalledCondition)).To(BeNil(), "Stalled must be absent")
		return
	}
	stalled := is(sluicev1beta1.StalledCondition, true)
	g.Expect(stalled.Reason).To(Equal(w.stalled), "Stalled reason")
	g.Expect(ready.Reason).To(Equal(w.stalled), "Ready reason when stalled")
}

func dtKinds(actions []Action) []ActionKind {
	var out []ActionKind
	for _, a := range actions {
		out = append(out, a.Kind)
	}
	return out
}

// dtSetRoutesOf returns the routes of the last SetRoutes action, nil when none.
func dtSetRoutesOf(actions []Action) *router.Routes {
	var r *router.Routes
	for _, a := range actions {
		if a.Kind == SetRoutes {
			rr := a.Routes
			r = &rr
		}
	}
	return r
}

func dtReasons(events []Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Reason)
	}
	return out
}

func dtEventNamed(d Decision, reason string) Event {
	for _, e := range d.Events {
		if e.Reason == reason {
			return e
		}
	}
	return Event{}
}

func dtCondOf(d Decision, t string) metav1.Condition {
	if c := meta.FindStatusCondition(d.Status.Conditions, t); c != nil {
		return *c
	}
	return metav1.Condition{}
}

func dtTimeIs(t time.Time) func(*metav1.Time) bool {
	return func(m *metav1.Time) bool { return m != nil && m.Time.Equal(t) }
}

// dtDecideAnswering decides o and, when checks are asked, answers them with
// res and decides again. It returns the checks asked (nil when none).
func dtDecideAnswering(o Observation, res *CheckResults) (*CheckRequest, Decision) {
	d := Decide(o)
	if d.NeedChecks == nil {
		return nil, d
	}
	req := d.NeedChecks
	o.Checks = res
	return req, Decide(o)
}

// dtWithStatus returns c with the decided status, as the reconciler would patch it.
func dtWithStatus(c *sluicev1beta1.Canary, d Decision) *sluicev1beta1.Canary {
	c = c.DeepCopy()
	c.Status = *d.Status.DeepCopy()
	return c
}

// ---------------------------------------------------------------------------
// Initializing

func TestDecide_Initializing(t *testing.T) {
	cfg := map[string]string{"configmap/podinfo-config": "sum1"}
	dtRunCases(t, []dtDecideCase{
		{
			name:        "primary missing: waits for it, not-ready clock started",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus("")), dtPrimaryMissing()),
			wantPhase:   dtPhInitializing,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs("Initializing"),
			wantConds:   dtReleasing("PrimaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.NotReadySince).To(Satisfy(dtTimeIs(dtNow)))
				g.Expect(d.Status.LastTransitionTime).To(Satisfy(dtTimeIs(dtNow)))
				g.Expect(dtCondOf(d, sluicev1beta1.ProgressingCondition).Message).To(Equal("waiting for the primary to be created"))
				g.Expect(d.Status.LastAppliedSpec).To(BeEmpty())
			},
		},
		{
			name:        "primary not ready: waits",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhInitializing, dtNotReadyFor(time.Minute))), dtPrimaryNotReady("0/2 replicas available")),
			wantPhase:   dtPhInitializing,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: waitRetry,
			wantConds:   dtReleasing("PrimaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.NotReadySince).To(Satisfy(dtTimeIs(dtNow.Add(-time.Minute))), "the clock is not restarted")
				g.Expect(dtCondOf(d, sluicev1beta1.ProgressingCondition).Message).To(ContainSubstring("0/2 replicas available"))
			},
		},
		{
			name:        "primary not ready close to the deadline: requeued at the deadline",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhInitializing, dtNotReadyFor(dtDefaultDeadline-2*time.Second))), dtPrimaryNotReady("0/2")),
			wantPhase:   dtPhInitializing,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: 2 * time.Second,
			wantConds:   dtReleasing("PrimaryNotReady"),
		},
		{
			name:        "primary not ready beyond progressDeadlineSeconds: Stalled",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhInitializing, dtNotReadyFor(2*time.Minute)), dtProgressDeadline(60)), dtPrimaryNotReady("image pull back-off")),
			wantPhase:   dtPhInitializing,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: waitRetry,
			wantConds:   dtConds{progressing: true, reason: "Initializing", stalled: "PrimaryNotReady"},
			check: func(g Gomega, d Decision) {
				g.Expect(dtCondOf(d, sluicev1beta1.StalledCondition).Message).To(ContainSubstring("image pull back-off"))
			},
		},
		{
			name:        "primary ready: Initialized, primary serves all traffic, target scaled to zero",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus("")), dtTargetConfigs(cfg)),
			wantPhase:   dtPhInitialized,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, SetRoutes),
			wantEvents:  dtEvs("Initializing", "Initialized"),
			wantConds:   dtSettled(dtPhInitialized),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.LastAppliedSpec).To(Equal(dtHashA))
				g.Expect(d.Status.LastPromotedSpec).To(Equal(dtHashA))
				g.Expect(d.Status.TrackedConfigs).To(Equal(cfg))
				g.Expect(d.Status.Revision).To(Equal(revisionOf(dtHashA, cfg)))
				g.Expect(d.Status.NotReadySince).To(BeNil())
				g.Expect(d.Status.LastTransitionTime).To(Satisfy(dtTimeIs(dtNow)))
			},
			wantRequeue: maxDrain, // the canary is scaled down once the traffic has drained
		},
		{
			name: "primary ready after waiting: the specs are the primary's template hash",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhInitializing, dtNotReadyFor(time.Minute))),
				dtPrimaryHash(dtHashC)),
			wantPhase:   dtPhInitialized,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, SetRoutes),
			wantEvents:  dtEvs("Initialized"),
			// The target (hashA) differs from what the primary runs: not promoted yet.
			wantConds: dtHalted(dtPhInitialized),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.LastAppliedSpec).To(Equal(dtHashC))
				g.Expect(d.Status.LastPromotedSpec).To(Equal(dtHashC))
				g.Expect(d.Status.NotReadySince).To(BeNil())
			},
			wantRequeue: maxDrain, // the canary is scaled down once the traffic has drained
		},
	})
}

// ---------------------------------------------------------------------------
// Idle: Initialized, Waiting, Succeeded, Failed

func TestDecide_Idle(t *testing.T) {
	oldCfg := map[string]string{"configmap/podinfo-config": "sum1"}
	newCfg := map[string]string{"configmap/podinfo-config": "sum2"}
	startedB := func(g Gomega, d Decision) {
		g.Expect(d.Status.LastAppliedSpec).To(Equal(dtHashB))
		g.Expect(d.Status.LastPromotedSpec).To(Equal(dtHashA))
		g.Expect(d.Status.Revision).To(Equal(revisionOf(dtHashB, nil)))
		g.Expect(d.Status.LastStepTime).To(Satisfy(dtTimeIs(dtNow)))
		g.Expect(d.Status.NotReadySince).To(Satisfy(dtTimeIs(dtNow)))
		g.Expect(d.Status.History).To(BeNil())
		g.Expect(d.Status.LastTransitionTime).To(Satisfy(dtTimeIs(dtNow)))
	}
	dtRunCases(t, []dtDecideCase{
		{
			name:        "Initialized, nothing new: no phase change",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhInitialized))),
			wantPhase:   dtPhInitialized,
			wantActions: dtActs(EnsureObjects),
			wantConds:   dtSettled(dtPhInitialized),
		},
		{
			name:        "Succeeded, nothing new, target scaled up: scaled back to zero",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), dtTargetScaledToZero(false)),
			wantPhase:   dtPhSucceeded,
			wantActions: dtActs(EnsureObjects, ScaleTargetToZero),
			wantConds:   dtSettled(dtPhSucceeded),
		},
		{
			name:        "Failed after a failed promotion (traffic on the canary): target kept up",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFailed, dtWeight(100))), dtTargetScaledToZero(false)),
			wantPhase:   dtPhFailed,
			wantWeight:  100,
			wantActions: dtActs(EnsureObjects),
			wantConds:   dtFailed("ReleaseFailed"),
		},
		{
			name:        "Succeeded, new template hash: Progressing",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), dtTargetHash(dtHashB)),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Progressing"),
			wantConds:   dtReleasing("CanaryNotReady"),
			check:       startedB,
		},
		{
			name:        "Initialized, new template hash: Progressing",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhInitialized)), dtTargetHash(dtHashB)),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Progressing"),
			wantConds:   dtReleasing("CanaryNotReady"),
			check:       startedB,
		},
		{
			name: "Failed, new template hash: Progressing with the history cleared",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFailed, dtWeight(0), dtFailedChecks(2), func(s *sluicev1beta1.CanaryStatus) {
				s.History = []sluicev1beta1.CanaryStep{{Phase: dtPhFailed, Message: "old"}}
			})), dtTargetHash(dtHashC)),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Progressing"),
			wantConds:   dtReleasing("CanaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.LastAppliedSpec).To(Equal(dtHashC))
				g.Expect(d.Status.History).To(BeNil())
			},
		},
		{
			name: "regression: new revision while the target is scaled up: not scaled to zero right before being scaled up",
			// Regression (fixed): idle() emits ScaleTargetToZero whenever
			// the target is not at zero, before it knows whether the release starts
			// in the same call; the reconciler then patches the target to 0 replicas
			// (or adds the DaemonSet scale-to-zero node selector) and straight back
			// up, killing and recreating the pods of the revision to analyse.
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), dtTargetHash(dtHashB), dtTargetScaledToZero(false)),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Progressing"),
			wantConds:   dtReleasing("Progressing"),
		},
		{
			name: "config checksum change: Progressing with the new configs tracked",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded, dtTrackedConfigs(oldCfg))),
				dtTargetConfigs(newCfg)),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Progressing"),
			wantConds:   dtReleasing("CanaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.LastAppliedSpec).To(Equal(dtHashA))
				g.Expect(d.Status.TrackedConfigs).To(Equal(newCfg))
				g.Expect(d.Status.Revision).To(Equal(revisionOf(dtHashA, newCfg)))
				g.Expect(d.Status.Revision).NotTo(Equal(revisionOf(dtHashA, oldCfg)))
			},
		},
		{
			name:       "new revision with a confirm-rollout hook: the gate is asked first",
			obs:        dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded), dtHooks(dtHookConfirmRollout)), dtTargetHash(dtHashB)),
			wantChecks: &CheckRequest{Gates: []string{dtHookConfirmRollout}},
		},
		{
			name: "confirm-rollout closed: Waiting",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded), dtHooks(dtHookConfirmRollout)), dtTargetHash(dtHashB),
				dtWithChecks(dtGated(&CheckResults{}, dtHookConfirmRollout, false))),
			wantPhase:   dtPhWaiting,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Waiting"),
			wantConds:   dtReleasing("ConfirmRollout"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.LastAppliedSpec).To(Equal(dtHashA), "the release has not started")
			},
		},
		{
			name: "confirm-rollout open: Progressing",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded), dtHooks(dtHookConfirmRollout)), dtTargetHash(dtHashB),
				dtWithChecks(dtGated(&CheckResults{}, dtHookConfirmRollout, true))),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Progressing"),
			wantConds:   dtReleasing("CanaryNotReady"),
			check:       startedB,
		},
		{
			name: "Waiting for confirm-rollout, gate opens: Progressing",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhWaiting), dtHooks(dtHookConfirmRollout)), dtTargetHash(dtHashB),
				dtWithChecks(dtGated(&CheckResults{}, dtHookConfirmRollout, true))),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Progressing"),
			wantConds:   dtReleasing("CanaryNotReady"),
			check:       startedB,
		},
		{
			name:        "no free rollout slot: Waiting with reason ConcurrencyLimit",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), dtTargetHash(dtHashB), dtSlotBusy()),
			wantPhase:   dtPhWaiting,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs("Waiting"),
			wantConds:   dtReleasing("ConcurrencyLimit"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.LastAppliedSpec).To(Equal(dtHashA))
			},
		},
		{
			name:        "Waiting, still no slot: keeps waiting without a new event",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhWaiting)), dtTargetHash(dtHashB), dtSlotBusy()),
			wantPhase:   dtPhWaiting,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: waitRetry,
			wantConds:   dtReleasing("ConcurrencyLimit"),
		},
		{
			name:        "Waiting, slot frees: Progressing",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhWaiting)), dtTargetHash(dtHashB)),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Progressing"),
			wantConds:   dtReleasing("CanaryNotReady"),
			check:       startedB,
		},
		{
			name:        "Waiting whose revision vanished: Succeeded",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhWaiting)), dtSlotBusy()),
			wantPhase:   dtPhSucceeded,
			wantActions: dtActs(EnsureObjects),
			wantEvents:  dtEvs("Succeeded"),
			wantConds:   dtSettled(dtPhSucceeded),
		},
		{
			name: "regression: Waiting after a failed release whose new revision vanished: back to Failed, not Succeeded",
			// Regression (fixed): Failed (hashB, never promoted) -> new revision hashC waits for a
			// slot -> hashC is withdrawn (target back on hashB). idle()
			// turns any Waiting without a new revision into
			// Succeeded, so a revision that failed its analysis is reported
			// Succeeded (while Ready and Promoted stay False), and it can no longer
			// be retried since sluice.dev/retry only acts in phase Failed.
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhWaiting, dtApplied(dtHashB))), dtSlotBusy()),
			wantPhase:   dtPhFailed,
			wantActions: dtActs(EnsureObjects),
			wantEvents:  dtEvs("Failed"),
			wantConds:   dtFailed("ReleaseFailed"),
		},
		{
			name:        "Failed, target reverted to the promoted spec: Succeeded without a release",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFailed)), dtTargetHash(dtHashA)),
			wantPhase:   dtPhSucceeded,
			wantActions: dtActs(EnsureObjects),
			wantEvents:  dtEvs("Succeeded"),
			wantConds:   dtSettled(dtPhSucceeded),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.LastAppliedSpec).To(Equal(dtHashA))
				g.Expect(d.Status.Revision).To(Equal(revisionOf(dtHashA, nil)))
			},
		},
		{
			name:        "Failed, nothing new: stays Failed",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFailed))),
			wantPhase:   dtPhFailed,
			wantActions: dtActs(EnsureObjects),
			wantConds:   dtFailed("ReleaseFailed"),
		},
		{
			name:        "retry annotation on Failed: Progressing again for the same revision",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFailed, dtFailedChecks(2)), dtAnnotate(dtAnnotationRetry, "1"))),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Progressing"),
			wantConds:   dtReleasing("CanaryNotReady"),
			check: func(g Gomega, d Decision) {
				startedB(g, d)
				g.Expect(d.Status.HandledRequests).To(Equal(&sluicev1beta1.HandledRequests{Retry: "1"}))
				g.Expect(dtEventNamed(d, "Progressing").Message).To(ContainSubstring("Retrying"))
			},
		},
		{
			name: "retry annotation already handled: nothing happens",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFailed, dtHandled(sluicev1beta1.HandledRequests{Retry: "1"})),
				dtAnnotate(dtAnnotationRetry, "1"))),
			wantPhase:   dtPhFailed,
			wantActions: dtActs(EnsureObjects),
			wantConds:   dtFailed("ReleaseFailed"),
		},
		{
			name: "retry annotation with a new value: retried again",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFailed, dtHandled(sluicev1beta1.HandledRequests{Retry: "1"})),
				dtAnnotate(dtAnnotationRetry, "2"))),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Progressing"),
			wantConds:   dtReleasing("CanaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.HandledRequests.Retry).To(Equal("2"))
			},
		},
		{
			name:       "retry annotation with a confirm-rollout hook: the gate is asked first",
			obs:        dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFailed), dtHooks(dtHookConfirmRollout), dtAnnotate(dtAnnotationRetry, "1"))),
			wantChecks: &CheckRequest{Gates: []string{dtHookConfirmRollout}},
		},
		{
			name: "promote and abort annotations while idle are settled, not kept for later",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded),
				dtAnnotate(dtAnnotationPromote, "p1"), dtAnnotate(dtAnnotationAbort, "a1"))),
			wantPhase:   dtPhSucceeded,
			wantActions: dtActs(EnsureObjects),
			wantConds:   dtSettled(dtPhSucceeded),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.HandledRequests).To(Equal(&sluicev1beta1.HandledRequests{Promote: "p1", Abort: "a1"}))
			},
		},
		{
			name: "session affinity: the new cookie replaces the current one, which becomes the previous one",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded, dtCookie("cookie-1")), dtSessionAffinity()),
				dtTargetHash(dtHashB), dtNewCookie("cookie-2")),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Progressing"),
			wantConds:   dtReleasing("CanaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.SessionAffinityCookie).To(Equal("cookie-2"))
				g.Expect(d.Status.PreviousSessionAffinityCookie).To(Equal("cookie-1"))
			},
		},
		{
			name: "session affinity, first release: a cookie, no previous one",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhInitialized), dtSessionAffinity()),
				dtTargetHash(dtHashB), dtNewCookie("cookie-1")),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Progressing"),
			wantConds:   dtReleasing("CanaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.SessionAffinityCookie).To(Equal("cookie-1"))
				g.Expect(d.Status.PreviousSessionAffinityCookie).To(BeEmpty())
			},
		},
		{
			name: "no session affinity: the new cookie is ignored",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)),
				dtTargetHash(dtHashB), dtNewCookie("cookie-1")),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Progressing"),
			wantConds:   dtReleasing("CanaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.SessionAffinityCookie).To(BeEmpty())
			},
		},
	})
}

// TestDecide_RetryRequests follows retry requests over several reconciles.
func TestDecide_RetryRequests(t *testing.T) {
	t.Run("regression: a retry waiting for a rollout slot is kept until a slot frees", func(t *testing.T) {
		// Regression (fixed): idle() marks the retry handled when it is
		// first seen, even when the release cannot start (no slot); the next
		// reconcile is in phase Waiting, where retries are not considered and
		// there is no new revision, so the canary
		// becomes Succeeded and the retry is lost.
		g := NewWithT(t)
		c := dtCanary(dtProgressive(), dtStatus(dtPhFailed), dtAnnotate(dtAnnotationRetry, "1"))

		d := Decide(dtObserve(c, dtSlotBusy()))
		g.Expect(d.Status.Phase).To(Equal(dtPhWaiting))
		g.Expect(dtCondOf(d, sluicev1beta1.ProgressingCondition).Reason).To(Equal("ConcurrencyLimit"))

		c = dtWithStatus(c, d)
		d = Decide(dtObserve(c, dtSlotBusy(), dtAt(dtNow.Add(waitRetry))))
		g.Expect(d.Status.Phase).To(Equal(dtPhWaiting), "still waiting for a slot to retry")

		c = dtWithStatus(c, d)
		d = Decide(dtObserve(c, dtAt(dtNow.Add(2*waitRetry))))
		g.Expect(d.Status.Phase).To(Equal(dtPhProgressing), "the retry starts once a slot frees")
		g.Expect(d.Status.LastAppliedSpec).To(Equal(dtHashB))
		g.Expect(dtKinds(d.Actions)).To(Equal(dtActs(EnsureObjects, ScaleTargetUp, SetRoutes)))
	})

	t.Run("regression: a retry waiting for confirm-rollout asks the gate again", func(t *testing.T) {
		// Regression (fixed): same cause: after a closed confirm-rollout gate the retry is
		// handled and the Canary is Waiting; the next reconcile turns it into
		// Succeeded without asking the gate again.
		g := NewWithT(t)
		c := dtCanary(dtProgressive(), dtStatus(dtPhFailed), dtHooks(dtHookConfirmRollout), dtAnnotate(dtAnnotationRetry, "1"))

		req, d := dtDecideAnswering(dtObserve(c), dtGated(&CheckResults{}, dtHookConfirmRollout, false))
		g.Expect(req).To(Equal(&CheckRequest{Gates: []string{dtHookConfirmRollout}}))
		g.Expect(d.Status.Phase).To(Equal(dtPhWaiting))

		c = dtWithStatus(c, d)
		req, d = dtDecideAnswering(dtObserve(c, dtAt(dtNow.Add(dtInterval))), dtGated(&CheckResults{}, dtHookConfirmRollout, true))
		g.Expect(req).To(Equal(&CheckRequest{Gates: []string{dtHookConfirmRollout}}), "the gate is asked again")
		g.Expect(d.Status.Phase).To(Equal(dtPhProgressing))
	})

	t.Run("regression: a retry requested while nothing failed does not retry a later failure", func(t *testing.T) {
		// Regression (fixed): idle() settles promote and abort requests made while no release
		// runs ("settled, not kept for later") but only
		// reads the retry annotation in phase Failed, so a
		// retry annotated earlier fires on the next failure, without anyone
		// asking for it.
		g := NewWithT(t)
		c := dtCanary(dtProgressive(), dtStatus(dtPhSucceeded), dtAnnotate(dtAnnotationRetry, "1"))
		d := Decide(dtObserve(c))
		g.Expect(d.Status.Phase).To(Equal(dtPhSucceeded))

		// Later a release of hashB fails.
		c = dtWithStatus(c, d)
		c.Status.Phase = dtPhFailed
		c.Status.LastAppliedSpec = dtHashB
		c.Status.Revision = revisionOf(dtHashB, nil)
		d = Decide(dtObserve(c, dtAt(dtNow.Add(time.Hour))))
		g.Expect(d.Status.Phase).To(Equal(dtPhFailed), "the stale retry request must not restart the release")
	})

	t.Run("a retry is handled once", func(t *testing.T) {
		g := NewWithT(t)
		c := dtCanary(dtProgressive(), dtStatus(dtPhFailed), dtAnnotate(dtAnnotationRetry, "1"))
		d := Decide(dtObserve(c))
		g.Expect(d.Status.Phase).To(Equal(dtPhProgressing))

		// The retried release fails again.
		c = dtWithStatus(c, d)
		c.Status.Phase = dtPhFailed
		d = Decide(dtObserve(c, dtAt(dtNow.Add(time.Hour))))
		g.Expect(d.Status.Phase).To(Equal(dtPhFailed), "the same annotation value does nothing a second time")
		g.Expect(dtKinds(d.Actions)).To(Equal(dtActs(EnsureObjects)))
	})
}

// ---------------------------------------------------------------------------
// Progressing

func TestDecide_Progressing(t *testing.T) {
	failedMetric := dtMetric(sluicev1beta1.CheckFailed)
	dtRunCases(t, []dtDecideCase{
		{
			name:        "step not due: requeued for the remaining time, no checks",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10), dtLastStep(20*time.Second)))),
			wantPhase:   dtPhProgressing,
			wantWeight:  10,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: 40 * time.Second,
			wantConds:   dtReleasing("Progressing"),
		},
		{
			name:       "due at weight 0, iteration 0: pre-rollout analysis",
			obs:        dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing))),
			wantChecks: &CheckRequest{Analysis: dtHookPreRollout},
		},
		{
			name:       "never stepped: due at once",
			obs:        dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtNeverStepped()))),
			wantChecks: &CheckRequest{Analysis: dtHookPreRollout},
		},
		{
			name:       "due at weight 10: rollout analysis",
			obs:        dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10)))),
			wantChecks: &CheckRequest{Analysis: dtHookRollout},
		},
		{
			name:       "rollback hook: the rollback webhooks are asked",
			obs:        dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10)), dtHooks(dtHookRollback, dtHookPostRollout))),
			wantChecks: &CheckRequest{Rollback: true, Analysis: dtHookRollout},
		},
		{
			name:       "below max weight: confirm-traffic-increase is asked",
			obs:        dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10)), dtHooks(dtHookConfirmTraffic, dtHookConfirmPromote))),
			wantChecks: &CheckRequest{Gates: []string{dtHookConfirmTraffic}, Analysis: dtHookRollout},
		},
		{
			name:       "at weight 0 with gates: pre-rollout and confirm-traffic-increase",
			obs:        dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing), dtHooks(dtHookConfirmTraffic, dtHookRollback))),
			wantChecks: &CheckRequest{Gates: []string{dtHookConfirmTraffic}, Rollback: true, Analysis: dtHookPreRollout},
		},
		{
			name:       "at max weight: confirm-promotion is asked",
			obs:        dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(30)), dtHooks(dtHookConfirmTraffic, dtHookConfirmPromote))),
			wantChecks: &CheckRequest{Gates: []string{dtHookConfirmPromote}, Analysis: dtHookRollout},
		},
		{
			name:       "at max weight without a confirm-promotion hook: no gate",
			obs:        dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(30)), dtHooks(dtHookConfirmTraffic))),
			wantChecks: &CheckRequest{Analysis: dtHookRollout},
		},
		{
			name:        "checks pass at weight 0: weight 10",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing)), dtWithChecks(dtPassing())),
			wantPhase:   dtPhProgressing,
			wantWeight:  10,
			wantRoutes:  dtRoutes(90, 10),
			wantActions: dtActs(EnsureObjects, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("WeightIncreased"),
			wantConds:   dtReleasing("Progressing"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.LastStepTime).To(Satisfy(dtTimeIs(dtNow)))
				g.Expect(d.Status.History).To(HaveLen(1))
				g.Expect(d.Status.History[0].Weight).To(Equal(int32(10)))
				g.Expect(d.Status.History[0].Checks).To(Equal(dtPassing().Checks))
				g.Expect(d.Status.History[0].Time.Time).To(Equal(dtNow))
			},
		},
		{
			name:        "checks pass at weight 20: weight 30 (maxWeight)",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20))), dtWithChecks(dtPassing())),
			wantPhase:   dtPhProgressing,
			wantWeight:  30,
			wantRoutes:  dtRoutes(70, 30),
			wantActions: dtActs(EnsureObjects, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("WeightIncreased"),
			wantConds:   dtReleasing("Progressing"),
		},
		{
			name: "confirm-traffic-increase closed: weight held",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10)), dtHooks(dtHookConfirmTraffic)),
				dtWithChecks(dtGated(dtPassing(), dtHookConfirmTraffic, false))),
			wantPhase:   dtPhProgressing,
			wantWeight:  10,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("WaitingTrafficIncrease"),
			wantConds:   dtReleasing("Progressing"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.LastStepTime).To(Satisfy(dtTimeIs(dtNow)))
			},
		},
		{
			name: "confirm-traffic-increase open: weight advances",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10)), dtHooks(dtHookConfirmTraffic)),
				dtWithChecks(dtGated(dtPassing(), dtHookConfirmTraffic, true))),
			wantPhase:   dtPhProgressing,
			wantWeight:  20,
			wantRoutes:  dtRoutes(80, 20),
			wantActions: dtActs(EnsureObjects, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("WeightIncreased"),
			wantConds:   dtReleasing("Progressing"),
		},
		{
			name:             "failed check: failedChecks+1, weight held, CheckFailed, history entry",
			obs:              dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10))), dtWithChecks(dtResults(failedMetric, dtWebhook(sluicev1beta1.CheckPassed)))),
			wantPhase:        dtPhProgressing,
			wantWeight:       10,
			wantFailedChecks: 1,
			wantActions:      dtActs(EnsureObjects),
			wantRequeue:      dtInterval,
			wantEvents:       dtEvs("CheckFailed"),
			wantConds:        dtReleasing("Progressing"),
			check: func(g Gomega, d Decision) {
				e := dtEventNamed(d, "CheckFailed")
				g.Expect(e.Warning).To(BeTrue())
				g.Expect(e.Message).To(ContainSubstring("1/2 failed checks"))
				g.Expect(e.Message).To(ContainSubstring("request-success-rate"))
				g.Expect(d.Status.History).To(HaveLen(1))
				g.Expect(d.Status.History[0].Checks).To(ContainElement(failedMetric))
				g.Expect(d.Status.History[0].Weight).To(Equal(int32(10)))
				g.Expect(d.Status.LastStepTime).To(Satisfy(dtTimeIs(dtNow)))
			},
		},
		{
			name:             "failed check at weight 0 (pre-rollout): weight stays 0",
			obs:              dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing)), dtWithChecks(dtResults(dtWebhook(sluicev1beta1.CheckFailed)))),
			wantPhase:        dtPhProgressing,
			wantFailedChecks: 1,
			wantActions:      dtActs(EnsureObjects),
			wantRequeue:      dtInterval,
			wantEvents:       dtEvs("CheckFailed"),
			wantConds:        dtReleasing("Progressing"),
		},
		{
			name:             "failed checks reach the threshold: Failed, primary gets all traffic",
			obs:              dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), dtFailedChecks(1))), dtWithChecks(dtResults(failedMetric))),
			wantPhase:        dtPhFailed,
			wantRoutes:       dtRoutes(100, 0),
			wantFailedChecks: 2,
			wantActions:      dtActs(EnsureObjects, SetRoutes, RunPostRollout),
			wantRequeue:      maxDrain,
			wantEvents:       dtEvs("ThresholdReached", "Failed"),
			wantConds:        dtFailed("ThresholdReached"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.NotReadySince).To(BeNil())
				g.Expect(d.Status.History).To(HaveLen(2))
				g.Expect(d.Status.History[0].Checks).To(ContainElement(failedMetric))
				g.Expect(d.Status.History[1].Phase).To(Equal(dtPhFailed))
				g.Expect(dtEventNamed(d, "Failed").Warning).To(BeTrue())
				// Ready says why, not only that it failed.
				g.Expect(dtCondOf(d, sluicev1beta1.ReadyCondition).Message).To(Equal("Release phase Failed: " + d.Status.History[1].Message))
				g.Expect(d.Status.History[1].Message).NotTo(BeEmpty())
			},
		},
		{
			name:             "Error outcome counts as a failure",
			obs:              dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10))), dtWithChecks(dtResults(dtMetric(sluicev1beta1.CheckError)))),
			wantPhase:        dtPhProgressing,
			wantWeight:       10,
			wantFailedChecks: 1,
			wantActions:      dtActs(EnsureObjects),
			wantRequeue:      dtInterval,
			wantEvents:       dtEvs("CheckFailed"),
			wantConds:        dtReleasing("Progressing"),
		},
		{
			name:             "NoData outcome counts as a failure",
			obs:              dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10))), dtWithChecks(dtResults(dtMetric(sluicev1beta1.CheckNoData)))),
			wantPhase:        dtPhProgressing,
			wantWeight:       10,
			wantFailedChecks: 1,
			wantActions:      dtActs(EnsureObjects),
			wantRequeue:      dtInterval,
			wantEvents:       dtEvs("CheckFailed"),
			wantConds:        dtReleasing("Progressing"),
		},
		{
			name:        "Skipped outcome does not count as a failure",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10))), dtWithChecks(dtResults(dtMetric(sluicev1beta1.CheckSkipped), dtWebhook(sluicev1beta1.CheckPassed)))),
			wantPhase:   dtPhProgressing,
			wantWeight:  20,
			wantRoutes:  dtRoutes(80, 20),
			wantActions: dtActs(EnsureObjects, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("WeightIncreased"),
			wantConds:   dtReleasing("Progressing"),
		},
		{
			name:        "rollback webhook requested: Failed",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20)), dtHooks(dtHookRollback)), dtWithChecks(dtRollbackRequested())),
			wantPhase:   dtPhFailed,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, SetRoutes, RunPostRollout),
			wantEvents:  dtEvs("RollbackRequested", "Failed"),
			wantConds:   dtFailed("RollbackRequested"),
			wantRequeue: maxDrain, // the canary is scaled down once the traffic has drained
		},
		{
			name:        "canary not ready: waits, not-ready clock started",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10))), dtTargetNotReady("1/2 replicas available")),
			wantPhase:   dtPhProgressing,
			wantWeight:  10,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: waitRetry,
			wantConds:   dtReleasing("CanaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.NotReadySince).To(Satisfy(dtTimeIs(dtNow)))
				g.Expect(dtCondOf(d, sluicev1beta1.ProgressingCondition).Message).To(Equal("1/2 replicas available"))
			},
		},
		{
			name:        "canary not ready close to the deadline: requeued at the deadline",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtNotReadyFor(dtDefaultDeadline-time.Second))), dtTargetNotReady("1/2")),
			wantPhase:   dtPhProgressing,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: time.Second,
			wantConds:   dtReleasing("CanaryNotReady"),
		},
		{
			name:        "canary not ready past progressDeadlineSeconds: Failed",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10), dtNotReadyFor(2*time.Minute)), dtProgressDeadline(60)), dtTargetNotReady("crash loop")),
			wantPhase:   dtPhFailed,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, SetRoutes, RunPostRollout),
			wantEvents:  dtEvs("ProgressDeadlineExceeded", "Failed"),
			wantConds:   dtFailed("ProgressDeadlineExceeded"),
			check: func(g Gomega, d Decision) {
				g.Expect(dtEventNamed(d, "ProgressDeadlineExceeded").Message).To(ContainSubstring("crash loop"))
				g.Expect(d.Status.NotReadySince).To(BeNil())
			},
			wantRequeue: maxDrain, // the canary is scaled down once the traffic has drained
		},
		{
			name:        "primary not ready: waits, canary not-ready clock cleared",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10), dtNotReadyFor(time.Minute))), dtPrimaryNotReady("1/2")),
			wantPhase:   dtPhProgressing,
			wantWeight:  10,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: waitRetry,
			wantConds:   dtReleasing("PrimaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.NotReadySince).To(BeNil())
			},
		},
		{
			name:        "new revision mid-analysis: restarted",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), dtFailedChecks(1))), dtTargetHash(dtHashC)),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Restarted"),
			wantConds:   dtReleasing("Progressing"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.LastAppliedSpec).To(Equal(dtHashC))
				g.Expect(d.Status.Revision).To(Equal(revisionOf(dtHashC, nil)))
				g.Expect(d.Status.LastStepTime).To(Satisfy(dtTimeIs(dtNow)))
				g.Expect(d.Status.History).To(BeNil())
			},
		},
		{
			name:        "new revision while waiting for promotion: restarted",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhWaitingPromotion, dtWeight(30))), dtTargetHash(dtHashC)),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Restarted", "Progressing"),
			wantConds:   dtReleasing("Progressing"),
		},
		{
			name:             "target reverted to the promoted spec mid-analysis: Succeeded, canary scaled to zero",
			obs:              dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20))), dtTargetHash(dtHashA)),
			wantPhase:        dtPhSucceeded,
			wantRoutes:       dtRoutes(100, 0),
			wantActions:      dtActs(EnsureObjects, SetRoutes),
			wantEvents:       dtEvs("Succeeded"),
			wantConds:        dtSettled(dtPhSucceeded),
			wantFailedChecks: 0,
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.LastAppliedSpec).To(Equal(dtHashA))
				g.Expect(d.Status.NotReadySince).To(BeNil())
			},
			wantRequeue: maxDrain, // the canary is scaled down once the traffic has drained
		},
		{
			name:        "abort annotation: Failed",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20)), dtAnnotate(dtAnnotationAbort, "a1"))),
			wantPhase:   dtPhFailed,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, SetRoutes, RunPostRollout),
			wantEvents:  dtEvs("Aborted", "Failed"),
			wantConds:   dtFailed("Aborted"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.HandledRequests.Abort).To(Equal("a1"))
			},
			wantRequeue: maxDrain, // the canary is scaled down once the traffic has drained
		},
		{
			name:        "abort annotation while the canary is not ready: Failed",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20)), dtAnnotate(dtAnnotationAbort, "a1")), dtTargetNotReady("0/2")),
			wantPhase:   dtPhFailed,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, SetRoutes, RunPostRollout),
			wantEvents:  dtEvs("Aborted", "Failed"),
			wantConds:   dtFailed("Aborted"),
			wantRequeue: maxDrain, // the canary is scaled down once the traffic has drained
		},
		{
			name: "abort annotation already handled: ignored",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), dtLastStep(20*time.Second),
				dtHandled(sluicev1beta1.HandledRequests{Abort: "a1"})), dtAnnotate(dtAnnotationAbort, "a1"))),
			wantPhase:   dtPhProgressing,
			wantWeight:  20,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: 40 * time.Second,
			wantConds:   dtReleasing("Progressing"),
		},
		{
			name:        "promote annotation: Promoting",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10), dtLastStep(20*time.Second)), dtAnnotate(dtAnnotationPromote, "p1"))),
			wantPhase:   dtPhPromoting,
			wantWeight:  10,
			wantActions: dtActs(EnsureObjects, PromotePrimary),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs("Promoting"),
			wantConds:   dtReleasing("PrimaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.HandledRequests.Promote).To(Equal("p1"))
				g.Expect(d.Status.NotReadySince).To(Satisfy(dtTimeIs(dtNow)))
			},
		},
		{
			name: "promote annotation already handled: ignored",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10), dtLastStep(20*time.Second),
				dtHandled(sluicev1beta1.HandledRequests{Promote: "p1"})), dtAnnotate(dtAnnotationPromote, "p1"))),
			wantPhase:   dtPhProgressing,
			wantWeight:  10,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: 40 * time.Second,
			wantConds:   dtReleasing("Progressing"),
		},
		{
			name:        "promote annotation waits for the canary to be ready",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10)), dtAnnotate(dtAnnotationPromote, "p1")), dtTargetNotReady("0/2")),
			wantPhase:   dtPhProgressing,
			wantWeight:  10,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: waitRetry,
			wantConds:   dtReleasing("CanaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.HandledRequests).To(BeNil(), "the request is kept until it can be acted upon")
			},
		},
		{
			name:        "skipAnalysis: Promoting once the canary is ready",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtLastStep(0)), dtSkipAnalysis())),
			wantPhase:   dtPhPromoting,
			wantActions: dtActs(EnsureObjects, PromotePrimary),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs("Promoting"),
			wantConds:   dtReleasing("PrimaryNotReady"),
		},
		{
			name:        "skipAnalysis, canary not ready: waits",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtLastStep(0)), dtSkipAnalysis()), dtTargetNotReady("0/2")),
			wantPhase:   dtPhProgressing,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: waitRetry,
			wantConds:   dtReleasing("CanaryNotReady"),
		},
	})
}

// ---------------------------------------------------------------------------
// At max weight: WaitingPromotion

func TestDecide_WaitingPromotion(t *testing.T) {
	gate := func(open bool) *CheckResults { return dtGated(dtPassing(), dtHookConfirmPromote, open) }
	dtRunCases(t, []dtDecideCase{
		{
			name: "at max weight, confirm-promotion closed: WaitingPromotion, weight kept",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(30)), dtHooks(dtHookConfirmPromote)),
				dtWithChecks(gate(false))),
			wantPhase:   dtPhWaitingPromotion,
			wantWeight:  30,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("WaitingPromotion"),
			wantConds:   dtReleasing("WaitingPromotion"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.History).To(HaveLen(1))
				g.Expect(d.Status.History[0].Phase).To(Equal(dtPhWaitingPromotion))
			},
		},
		{
			name:       "WaitingPromotion, due: analysis and confirm-promotion asked again",
			obs:        dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhWaitingPromotion, dtWeight(30)), dtHooks(dtHookConfirmPromote))),
			wantChecks: &CheckRequest{Gates: []string{dtHookConfirmPromote}, Analysis: dtHookRollout},
		},
		{
			name:        "WaitingPromotion, not due: requeued for the remaining time",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhWaitingPromotion, dtWeight(30), dtLastStep(45*time.Second)), dtHooks(dtHookConfirmPromote))),
			wantPhase:   dtPhWaitingPromotion,
			wantWeight:  30,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: 15 * time.Second,
			wantConds:   dtReleasing("WaitingPromotion"),
		},
		{
			name: "WaitingPromotion, gate still closed: no new event",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhWaitingPromotion, dtWeight(30)), dtHooks(dtHookConfirmPromote)),
				dtWithChecks(gate(false))),
			wantPhase:   dtPhWaitingPromotion,
			wantWeight:  30,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: dtInterval,
			wantConds:   dtReleasing("WaitingPromotion"),
		},
		{
			name: "WaitingPromotion, failed check: counted there",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhWaitingPromotion, dtWeight(30)), dtHooks(dtHookConfirmPromote)),
				dtWithChecks(dtGated(dtResults(dtMetric(sluicev1beta1.CheckFailed)), dtHookConfirmPromote, true))),
			wantPhase:        dtPhWaitingPromotion,
			wantWeight:       30,
			wantFailedChecks: 1,
			wantActions:      dtActs(EnsureObjects),
			wantRequeue:      dtInterval,
			wantEvents:       dtEvs("CheckFailed"),
			wantConds:        dtReleasing("WaitingPromotion"),
		},
		{
			name: "WaitingPromotion, failed checks reach the threshold: Failed",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhWaitingPromotion, dtWeight(30), dtFailedChecks(1)), dtHooks(dtHookConfirmPromote)),
				dtWithChecks(dtGated(dtResults(dtMetric(sluicev1beta1.CheckNoData)), dtHookConfirmPromote, false))),
			wantPhase:        dtPhFailed,
			wantRoutes:       dtRoutes(100, 0),
			wantFailedChecks: 2,
			wantActions:      dtActs(EnsureObjects, SetRoutes, RunPostRollout),
			wantRequeue:      maxDrain,
			wantEvents:       dtEvs("ThresholdReached", "Failed"),
			wantConds:        dtFailed("ThresholdReached"),
		},
		{
			name: "WaitingPromotion, gate opens: Promoting",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhWaitingPromotion, dtWeight(30)), dtHooks(dtHookConfirmPromote)),
				dtWithChecks(gate(true))),
			wantPhase:   dtPhPromoting,
			wantWeight:  30,
			wantActions: dtActs(EnsureObjects, PromotePrimary),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs("Promoting"),
			wantConds:   dtReleasing("PrimaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.NotReadySince).To(Satisfy(dtTimeIs(dtNow)))
				g.Expect(d.Status.LastStepTime).To(Satisfy(dtTimeIs(dtNow)))
			},
		},
		{
			name:        "at max weight without a confirm-promotion hook: Promoting",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(30))), dtWithChecks(dtPassing())),
			wantPhase:   dtPhPromoting,
			wantWeight:  30,
			wantActions: dtActs(EnsureObjects, PromotePrimary),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs("Promoting"),
			wantConds:   dtReleasing("PrimaryNotReady"),
		},
		{
			name: "WaitingPromotion, promote annotation: Promoting without the gate",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhWaitingPromotion, dtWeight(30)), dtHooks(dtHookConfirmPromote),
				dtAnnotate(dtAnnotationPromote, "p1"))),
			wantPhase:   dtPhPromoting,
			wantWeight:  30,
			wantActions: dtActs(EnsureObjects, PromotePrimary),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs("Promoting"),
			wantConds:   dtReleasing("PrimaryNotReady"),
		},
	})
}

// ---------------------------------------------------------------------------
// Releases step by step

// dtReleaseStep is one analysis step of a release, answered with passing checks.
type dtReleaseStep struct {
	wantAnalysis   string
	wantPhase      sluicev1beta1.CanaryPhase
	wantWeight     int32
	wantIterations int32
	wantRoutes     *router.Routes
	wantActions    []ActionKind
}

// dtRunRelease runs the steps one analysis interval apart from a Canary that
// just started Progressing.
func dtRunRelease(t *testing.T, c *sluicev1beta1.Canary, prov string, steps []dtReleaseStep) {
	t.Helper()
	g := NewWithT(t)
	for i, s := range steps {
		o := dtObserve(c, dtAt(dtNow.Add(time.Duration(i)*dtInterval)), dtProvider(prov))
		req, d := dtDecideAnswering(o, dtPassing())
		g.Expect(req).NotTo(BeNil(), "step %d: checks asked", i+1)
		g.Expect(req.Analysis).To(Equal(s.wantAnalysis), "step %d: analysis", i+1)
		g.Expect(req.Gates).To(BeEmpty(), "step %d: gates", i+1)
		g.Expect(d.Status.Phase).To(Equal(s.wantPhase), "step %d: phase", i+1)
		g.Expect(d.Status.CanaryWeight).To(Equal(s.wantWeight), "step %d: weight", i+1)
		g.Expect(d.Status.Iterations).To(Equal(s.wantIterations), "step %d: iterations", i+1)
		g.Expect(d.Status.FailedChecks).To(BeZero(), "step %d: failedChecks", i+1)
		g.Expect(dtSetRoutesOf(d.Actions)).To(Equal(s.wantRoutes), "step %d: routes", i+1)
		g.Expect(dtKinds(d.Actions)).To(Equal(s.wantActions), "step %d: actions", i+1)
		if s.wantRoutes != nil {
			g.Expect(d.Status.Mirrored).To(Equal(s.wantRoutes.Mirrored), "step %d: mirrored", i+1)
		}
		wantRequeue := dtInterval
		if s.wantPhase == dtPhPromoting {
			wantRequeue = waitRetry
		}
		g.Expect(d.RequeueAfter).To(Equal(wantRequeue), "step %d: requeueAfter", i+1)
		g.Expect(meta.IsStatusConditionTrue(d.Status.Conditions, sluicev1beta1.ProgressingCondition)).To(BeTrue(), "step %d: Progressing", i+1)
		g.Expect(meta.IsStatusConditionTrue(d.Status.Conditions, sluicev1beta1.ReadyCondition)).To(BeFalse(), "step %d: Ready", i+1)
		c = dtWithStatus(c, d)
	}
}

func TestDecide_WeightLadder(t *testing.T) {
	progressing := func(w int32, r *router.Routes, a string) dtReleaseStep {
		ks := dtActs(EnsureObjects)
		if r != nil {
			ks = dtActs(EnsureObjects, SetRoutes)
		}
		return dtReleaseStep{wantAnalysis: a, wantPhase: dtPhProgressing, wantWeight: w, wantRoutes: r, wantActions: ks}
	}
	promoting := func(w int32) dtReleaseStep {
		return dtReleaseStep{wantAnalysis: dtHookRollout, wantPhase: dtPhPromoting, wantWeight: w, wantActions: dtActs(EnsureObjects, PromotePrimary)}
	}
	tests := []struct {
		name   string
		canary *sluicev1beta1.Canary
		steps  []dtReleaseStep
	}{
		{
			name:   "stepWeight 10 up to maxWeight 30: 0 -> 10 -> 20 -> 30 -> Promoting",
			canary: dtCanary(dtProgressive(), dtStatus(dtPhProgressing)),
			steps: []dtReleaseStep{
				progressing(10, dtRoutes(90, 10), dtHookPreRollout),
				progressing(20, dtRoutes(80, 20), dtHookRollout),
				progressing(30, dtRoutes(70, 30), dtHookRollout),
				promoting(30),
			},
		},
		{
			name:   "stepWeights 5, 25, 50: 0 -> 5 -> 25 -> 50 -> Promoting",
			canary: dtCanary(dtStepWeights(), dtStatus(dtPhProgressing)),
			steps: []dtReleaseStep{
				progressing(5, dtRoutes(95, 5), dtHookPreRollout),
				progressing(25, dtRoutes(75, 25), dtHookRollout),
				progressing(50, dtRoutes(50, 50), dtHookRollout),
				promoting(50),
			},
		},
		{
			name:   "mirror: a mirrored step first, then 10 -> 20 -> 30 -> Promoting",
			canary: dtCanary(dtProgressiveMirror(), dtStatus(dtPhProgressing)),
			steps: []dtReleaseStep{
				progressing(0, dtMirroredRoutes(100, 0), dtHookPreRollout),
				progressing(10, dtRoutes(90, 10), dtHookRollout),
				progressing(20, dtRoutes(80, 20), dtHookRollout),
				progressing(30, dtRoutes(70, 30), dtHookRollout),
				promoting(30),
			},
		},
		{
			name: "stepWeight 40 capped at maxWeight 100: 0 -> 40 -> 80 -> 100 -> Promoting",
			canary: dtCanary(func() *sluicev1beta1.CanaryAnalysis {
				a := dtAnalysis()
				a.StepWeight = 40
				return a
			}(), dtStatus(dtPhProgressing)),
			steps: []dtReleaseStep{
				progressing(40, dtRoutes(60, 40), dtHookPreRollout),
				progressing(80, dtRoutes(20, 80), dtHookRollout),
				progressing(100, dtRoutes(0, 100), dtHookRollout),
				promoting(100),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { dtRunRelease(t, tt.canary, dtProviderIstio, tt.steps) })
	}
}

// ---------------------------------------------------------------------------
// Blue/green

func TestDecide_BlueGreen(t *testing.T) {
	iteration := func(n int32, r *router.Routes, a string) dtReleaseStep {
		ks := dtActs(EnsureObjects)
		if r != nil {
			ks = dtActs(EnsureObjects, SetRoutes)
		}
		return dtReleaseStep{wantAnalysis: a, wantPhase: dtPhProgressing, wantIterations: n, wantRoutes: r, wantActions: ks}
	}
	end := func(n int32) dtReleaseStep {
		return dtReleaseStep{wantAnalysis: dtHookRollout, wantPhase: dtPhPromoting, wantWeight: 100, wantIterations: n,
			wantRoutes: dtRoutes(0, 100), wantActions: dtActs(EnsureObjects, SetRoutes, PromotePrimary)}
	}
	kubernetesSteps := []dtReleaseStep{iteration(1, nil, dtHookPreRollout)}
	for n := int32(2); n <= 10; n++ {
		kubernetesSteps = append(kubernetesSteps, iteration(n, nil, dtHookRollout))
	}
	kubernetesSteps = append(kubernetesSteps, end(10))

	sequences := []struct {
		name   string
		canary *sluicev1beta1.Canary
		prov   string
		steps  []dtReleaseStep
	}{
		{
			name:   "3 iterations on the primary routes, then all traffic to the canary and Promoting",
			canary: dtCanary(dtBlueGreen(), dtStatus(dtPhProgressing)),
			prov:   dtProviderIstio,
			steps: []dtReleaseStep{
				iteration(1, nil, dtHookPreRollout),
				iteration(2, nil, dtHookRollout),
				iteration(3, nil, dtHookRollout),
				end(3),
			},
		},
		{
			name:   "mirror: traffic mirrored during the iterations",
			canary: dtCanary(dtBlueGreenMirror(), dtStatus(dtPhProgressing)),
			prov:   dtProviderIstio,
			steps: []dtReleaseStep{
				iteration(1, dtMirroredRoutes(100, 0), dtHookPreRollout),
				iteration(2, nil, dtHookRollout),
				iteration(3, nil, dtHookRollout),
				end(3),
			},
		},
		{
			name:   "kubernetes provider with only stepWeight: blue/green with 10 iterations",
			canary: dtCanary(dtStepWeightOnly(), dtStatus(dtPhProgressing)),
			prov:   dtProviderKubernetes,
			steps:  kubernetesSteps,
		},
	}
	for _, s := range sequences {
		t.Run(s.name, func(t *testing.T) { dtRunRelease(t, s.canary, s.prov, s.steps) })
	}

	dtRunCases(t, []dtDecideCase{
		{
			name:       "confirm-traffic-increase is not asked in blue/green",
			obs:        dtObserve(dtCanary(dtBlueGreen(), dtStatus(dtPhProgressing, dtIterations(1)), dtHooks(dtHookConfirmTraffic))),
			wantChecks: &CheckRequest{Analysis: dtHookRollout},
		},
		{
			name:       "after the last iteration: confirm-promotion is asked",
			obs:        dtObserve(dtCanary(dtBlueGreen(), dtStatus(dtPhProgressing, dtIterations(3)), dtHooks(dtHookConfirmTraffic, dtHookConfirmPromote))),
			wantChecks: &CheckRequest{Gates: []string{dtHookConfirmPromote}, Analysis: dtHookRollout},
		},
		{
			name: "after the last iteration, confirm-promotion closed: WaitingPromotion on the primary routes",
			obs: dtObserve(dtCanary(dtBlueGreen(), dtStatus(dtPhProgressing, dtIterations(3)), dtHooks(dtHookConfirmPromote)),
				dtWithChecks(dtGated(dtPassing(), dtHookConfirmPromote, false))),
			wantPhase:      dtPhWaitingPromotion,
			wantIterations: 3,
			wantActions:    dtActs(EnsureObjects),
			wantRequeue:    dtInterval,
			wantEvents:     dtEvs("WaitingPromotion"),
			wantConds:      dtReleasing("WaitingPromotion"),
		},
		{
			name:             "failed check: iteration held",
			obs:              dtObserve(dtCanary(dtBlueGreen(), dtStatus(dtPhProgressing, dtIterations(1))), dtWithChecks(dtResults(dtMetric(sluicev1beta1.CheckFailed)))),
			wantPhase:        dtPhProgressing,
			wantIterations:   1,
			wantFailedChecks: 1,
			wantActions:      dtActs(EnsureObjects),
			wantRequeue:      dtInterval,
			wantEvents:       dtEvs("CheckFailed"),
			wantConds:        dtReleasing("Progressing"),
		},
		{
			name: "mirrored, failed checks reach the threshold: Failed, mirroring stopped",
			obs: dtObserve(dtCanary(dtBlueGreenMirror(), dtStatus(dtPhProgressing, dtIterations(2), dtMirrored(), dtFailedChecks(1))),
				dtWithChecks(dtResults(dtMetric(sluicev1beta1.CheckFailed)))),
			wantPhase:        dtPhFailed,
			wantRoutes:       dtRoutes(100, 0),
			wantIterations:   2,
			wantFailedChecks: 2,
			wantActions:      dtActs(EnsureObjects, SetRoutes, RunPostRollout),
			wantRequeue:      maxDrain,
			wantEvents:       dtEvs("ThresholdReached", "Failed"),
			wantConds:        dtFailed("ThresholdReached"),
		},
		{
			name:           "kubernetes provider: stepWeight does not shift weight",
			obs:            dtObserve(dtCanary(dtStepWeightOnly(), dtStatus(dtPhProgressing, dtIterations(4))), dtProvider(dtProviderKubernetes), dtWithChecks(dtPassing())),
			wantPhase:      dtPhProgressing,
			wantIterations: 5,
			wantActions:    dtActs(EnsureObjects),
			wantRequeue:    dtInterval,
			wantConds:      dtReleasing("Progressing"),
		},
		{
			name:        "promote annotation: Promoting",
			obs:         dtObserve(dtCanary(dtBlueGreen(), dtStatus(dtPhProgressing, dtIterations(1)), dtAnnotate(dtAnnotationPromote, "p1"))),
			wantPhase:   dtPhPromoting,
			wantActions: dtActs(EnsureObjects, PromotePrimary),
			wantRequeue: waitRetry, wantIterations: 1,
			wantEvents: dtEvs("Promoting"),
			wantConds:  dtReleasing("PrimaryNotReady"),
		},
	})
}

// ---------------------------------------------------------------------------
// A/B testing

func TestDecide_ABTesting(t *testing.T) {
	t.Run("each iteration routes the matching requests to the canary, then Promoting", func(t *testing.T) {
		dtRunRelease(t, dtCanary(dtAbTesting(), dtStatus(dtPhProgressing)), dtProviderIstio, []dtReleaseStep{
			{wantAnalysis: dtHookPreRollout, wantPhase: dtPhProgressing, wantWeight: 100, wantIterations: 1, wantRoutes: dtRoutes(0, 100), wantActions: dtActs(EnsureObjects, SetRoutes)},
			{wantAnalysis: dtHookRollout, wantPhase: dtPhProgressing, wantWeight: 100, wantIterations: 2, wantRoutes: dtRoutes(0, 100), wantActions: dtActs(EnsureObjects, SetRoutes)},
			{wantAnalysis: dtHookRollout, wantPhase: dtPhPromoting, wantWeight: 100, wantIterations: 2, wantRoutes: dtRoutes(0, 100), wantActions: dtActs(EnsureObjects, SetRoutes, PromotePrimary)},
		})
	})

	dtRunCases(t, []dtDecideCase{
		{
			name:       "confirm-traffic-increase is not asked in A/B",
			obs:        dtObserve(dtCanary(dtAbTesting(), dtStatus(dtPhProgressing, dtWeight(100), dtIterations(1)), dtHooks(dtHookConfirmTraffic))),
			wantChecks: &CheckRequest{Analysis: dtHookRollout},
		},
		{
			name:             "failed check: iteration held, matching traffic stays on the canary",
			obs:              dtObserve(dtCanary(dtAbTesting(), dtStatus(dtPhProgressing, dtWeight(100), dtIterations(1))), dtWithChecks(dtResults(dtMetric(sluicev1beta1.CheckFailed)))),
			wantPhase:        dtPhProgressing,
			wantWeight:       100,
			wantIterations:   1,
			wantFailedChecks: 1,
			wantActions:      dtActs(EnsureObjects),
			wantRequeue:      dtInterval,
			wantEvents:       dtEvs("CheckFailed"),
			wantConds:        dtReleasing("Progressing"),
		},
		{
			name:        "rollback: primary gets all traffic",
			obs:         dtObserve(dtCanary(dtAbTesting(), dtStatus(dtPhProgressing, dtWeight(100), dtIterations(1)), dtHooks(dtHookRollback)), dtWithChecks(dtRollbackRequested())),
			wantPhase:   dtPhFailed,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, SetRoutes, RunPostRollout),
			wantEvents:  dtEvs("RollbackRequested", "Failed"),
			wantConds:   dtFailed("RollbackRequested"), wantIterations: 1,
			wantRequeue: maxDrain, // the canary is scaled down once the traffic has drained
		},
	})
}

// ---------------------------------------------------------------------------
// Promoting

func TestDecide_Promoting(t *testing.T) {
	dtRunCases(t, []dtDecideCase{
		{
			name:        "primary not yet given the canary template: waits, PromotePrimary again",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhPromoting, dtWeight(30), dtNotReadyFor(10*time.Second))), dtPrimaryHash(dtHashA)),
			wantPhase:   dtPhPromoting,
			wantWeight:  30,
			wantActions: dtActs(EnsureObjects, PromotePrimary),
			wantRequeue: waitRetry,
			wantConds:   dtReleasing("PrimaryNotReady"),
		},
		{
			name:        "promoted primary not ready: waits",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhPromoting, dtWeight(30), dtNotReadyFor(10*time.Second))), dtPrimaryNotReady("1/2 updated")),
			wantPhase:   dtPhPromoting,
			wantWeight:  30,
			wantActions: dtActs(EnsureObjects, PromotePrimary),
			wantRequeue: waitRetry,
			wantConds:   dtReleasing("PrimaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(dtCondOf(d, sluicev1beta1.ProgressingCondition).Message).To(ContainSubstring("1/2 updated"))
				g.Expect(d.Status.NotReadySince).To(Satisfy(dtTimeIs(dtNow.Add(-10 * time.Second))))
			},
		},
		{
			name:        "promoted primary not ready close to the deadline: requeued at the deadline",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhPromoting, dtWeight(30), dtNotReadyFor(dtDefaultDeadline-3*time.Second))), dtPrimaryNotReady("1/2")),
			wantPhase:   dtPhPromoting,
			wantWeight:  30,
			wantActions: dtActs(EnsureObjects, PromotePrimary),
			wantRequeue: 3 * time.Second,
			wantConds:   dtReleasing("PrimaryNotReady"),
		},
		{
			name: "promoted primary not ready past the deadline: Failed, traffic stays on the canary",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhPromoting, dtWeight(30), dtNotReadyFor(2*time.Minute)), dtProgressDeadline(60)),
				dtPrimaryNotReady("1/2 updated")),
			wantPhase:   dtPhFailed,
			wantWeight:  100,
			wantRoutes:  dtRoutes(0, 100),
			wantActions: dtActs(EnsureObjects, PromotePrimary, SetRoutes, RunPostRollout),
			wantEvents:  dtEvs("Failed"),
			wantConds:   dtFailed("PromotionFailed"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.NotReadySince).To(BeNil())
				g.Expect(dtEventNamed(d, "Failed").Warning).To(BeTrue())
				g.Expect(dtEventNamed(d, "Failed").Message).To(ContainSubstring("1/2 updated"))
			},
		},
		{
			name:        "primary ready: primary gets all traffic, canary scaled to zero, Finalising",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhPromoting, dtWeight(30), dtNotReadyFor(10*time.Second)))),
			wantPhase:   dtPhFinalising,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, PromotePrimary, SetRoutes),
			wantRequeue: maxDrain,
			wantEvents:  dtEvs("Finalising"),
			wantConds:   dtReleasing("Finalising"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.NotReadySince).To(BeNil())
			},
		},
		{
			name:           "blue/green, primary ready: traffic back from the canary, Finalising",
			obs:            dtObserve(dtCanary(dtBlueGreen(), dtStatus(dtPhPromoting, dtWeight(100), dtIterations(3)), dtStepWeightPromotion(20))),
			wantPhase:      dtPhFinalising,
			wantRoutes:     dtRoutes(100, 0),
			wantIterations: 3,
			wantActions:    dtActs(EnsureObjects, PromotePrimary, SetRoutes),
			wantRequeue:    maxDrain,
			wantEvents:     dtEvs("Finalising"),
			wantConds:      dtReleasing("Finalising"),
		},
		{
			name:           "A/B, primary ready: traffic back from the canary, Finalising",
			obs:            dtObserve(dtCanary(dtAbTesting(), dtStatus(dtPhPromoting, dtWeight(100), dtIterations(2)))),
			wantPhase:      dtPhFinalising,
			wantRoutes:     dtRoutes(100, 0),
			wantIterations: 2,
			wantActions:    dtActs(EnsureObjects, PromotePrimary, SetRoutes),
			wantRequeue:    maxDrain,
			wantEvents:     dtEvs("Finalising"),
			wantConds:      dtReleasing("Finalising"),
		},
		{
			name:        "stepWeightPromotion, step not due: waits for the interval",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhPromoting, dtWeight(30), dtLastStep(20*time.Second)), dtStepWeightPromotion(20))),
			wantPhase:   dtPhPromoting,
			wantWeight:  30,
			wantActions: dtActs(EnsureObjects, PromotePrimary),
			wantRequeue: 40 * time.Second,
			wantConds:   dtReleasing("Promoting"),
		},
	})

	t.Run("stepWeightPromotion 20 from weight 50: 30 -> 10 -> 0 over intervals, then Finalising", func(t *testing.T) {
		g := NewWithT(t)
		c := dtCanary(dtStepWeights(), dtStatus(dtPhPromoting, dtWeight(50), dtNotReadyFor(10*time.Second)), dtStepWeightPromotion(20))
		steps := []struct {
			after       time.Duration
			wantPhase   sluicev1beta1.CanaryPhase
			wantWeight  int32
			wantRoutes  *router.Routes
			wantActions []ActionKind
			wantRequeue time.Duration
			wantEvents  []string
		}{
			{0, dtPhPromoting, 30, dtRoutes(70, 30), dtActs(EnsureObjects, PromotePrimary, SetRoutes), dtInterval, dtEvs("PromotionStep")},
			{20 * time.Second, dtPhPromoting, 30, nil, dtActs(EnsureObjects, PromotePrimary), 40 * time.Second, nil},
			{dtInterval, dtPhPromoting, 10, dtRoutes(90, 10), dtActs(EnsureObjects, PromotePrimary, SetRoutes), dtInterval, dtEvs("PromotionStep")},
			{2 * dtInterval, dtPhFinalising, 0, dtRoutes(100, 0), dtActs(EnsureObjects, PromotePrimary, SetRoutes), maxDrain, dtEvs("Finalising")},
		}
		for i, s := range steps {
			d := Decide(dtObserve(c, dtAt(dtNow.Add(s.after))))
			g.Expect(d.NeedChecks).To(BeNil())
			g.Expect(d.Status.Phase).To(Equal(s.wantPhase), "step %d", i+1)
			g.Expect(d.Status.CanaryWeight).To(Equal(s.wantWeight), "step %d", i+1)
			g.Expect(dtSetRoutesOf(d.Actions)).To(Equal(s.wantRoutes), "step %d", i+1)
			g.Expect(dtKinds(d.Actions)).To(Equal(s.wantActions), "step %d", i+1)
			g.Expect(d.RequeueAfter).To(Equal(s.wantRequeue), "step %d", i+1)
			g.Expect(dtReasons(d.Events)).To(Equal(s.wantEvents), "step %d", i+1)
			c = dtWithStatus(c, d)
		}
	})

	t.Run("failed promotion: a later idle reconcile does not scale the target serving the traffic to zero", func(t *testing.T) {
		g := NewWithT(t)
		c := dtCanary(dtProgressive(), dtStatus(dtPhPromoting, dtWeight(30), dtNotReadyFor(2*time.Minute)), dtProgressDeadline(60))
		d := Decide(dtObserve(c, dtPrimaryNotReady("0/2")))
		g.Expect(d.Status.Phase).To(Equal(dtPhFailed))
		g.Expect(dtSetRoutesOf(d.Actions)).To(Equal(dtRoutes(0, 100)))

		c = dtWithStatus(c, d)
		d = Decide(dtObserve(c, dtAt(dtNow.Add(time.Minute)), dtTargetScaledToZero(false), dtPrimaryNotReady("0/2")))
		g.Expect(d.Status.Phase).To(Equal(dtPhFailed))
		g.Expect(d.Status.CanaryWeight).To(Equal(int32(100)))
		g.Expect(dtKinds(d.Actions)).To(Equal(dtActs(EnsureObjects)), "no ScaleTargetToZero")
	})
}

// ---------------------------------------------------------------------------
// Finalising

func TestDecide_Finalising(t *testing.T) {
	dtRunCases(t, []dtDecideCase{
		{
			name:           "target not yet scaled to zero: scaled again, waits",
			obs:            dtObserve(dtCanary(dtBlueGreen(), dtStatus(dtPhFinalising, dtIterations(3))), dtTargetScaledToZero(false)),
			wantPhase:      dtPhFinalising,
			wantIterations: 3,
			wantActions:    dtActs(EnsureObjects, ScaleTargetToZero),
			wantRequeue:    waitRetry,
			wantConds:      dtReleasing("Finalising"),
		},
		{
			name:        "target scaled to zero: Succeeded, promoted",
			obs:         dtObserve(dtCanary(dtBlueGreenMirror(), dtStatus(dtPhFinalising, dtIterations(3), dtFailedChecks(1), dtMirrored())), dtTargetScaledToZero(true)),
			wantPhase:   dtPhSucceeded,
			wantActions: dtActs(EnsureObjects, RunPostRollout),
			wantEvents:  dtEvs("Succeeded"),
			wantConds:   dtSettled(dtPhSucceeded),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.LastPromotedSpec).To(Equal(dtHashB))
				g.Expect(d.Status.LastAppliedSpec).To(Equal(dtHashB))
				g.Expect(d.Status.Mirrored).To(BeFalse())
				g.Expect(dtCondOf(d, sluicev1beta1.PromotedCondition).Message).To(ContainSubstring(revisionOf(dtHashB, nil)))
			},
		},
	})
}

// ---------------------------------------------------------------------------
// Deletion

func TestDecide_Deletion(t *testing.T) {
	terminated := dtConds{reason: string(dtPhTerminated)}
	dtRunCases(t, []dtDecideCase{
		{
			name:        "target not ready: Terminating, target scaled up, waits (routes untouched)",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), dtDeleting(), dtTargetNotReady("0/2")),
			wantPhase:   dtPhTerminating,
			wantActions: dtActs(ScaleTargetUp),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs("Terminating"),
			wantConds:   dtReleasing("TargetNotReady"),
		},
		{
			name:        "target not ready with revertOnDeletion: the routes wait for the target too",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded), dtRevertOnDeletion()), dtDeleting(), dtTargetNotReady("0/2")),
			wantPhase:   dtPhTerminating,
			wantActions: dtActs(ScaleTargetUp),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs("Terminating"),
			wantConds:   dtReleasing("TargetNotReady"),
		},
		{
			name:        "already Terminating, target still not ready: waits without a new event",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhTerminating)), dtDeleting(), dtTargetNotReady("1/2")),
			wantPhase:   dtPhTerminating,
			wantActions: dtActs(ScaleTargetUp),
			wantRequeue: waitRetry,
			wantConds:   dtReleasing("TargetNotReady"),
		},
		{
			name:        "target ready: apex restored, routes finalized to the apex, draining before the primary goes",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), dtDeleting()),
			wantPhase:   dtPhTerminating,
			wantActions: dtActs(ScaleTargetUp, RestoreApex, FinalizeRoutes),
			wantRequeue: maxDrain,
			wantEvents:  dtEvs("Terminating"),
			wantConds:   dtReleasing("Draining"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.LastStepTime).To(Satisfy(dtTimeIs(dtNow)), "the release of the routes is recorded")
			},
		},
		{
			name:        "Terminating, routes released 4s ago: still draining",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhTerminating, dtTransitioned(5*time.Second), dtLastStep(4*time.Second))), dtDeleting()),
			wantPhase:   dtPhTerminating,
			wantActions: dtActs(ScaleTargetUp, RestoreApex, FinalizeRoutes),
			wantRequeue: maxDrain - 4*time.Second,
			wantConds:   dtReleasing("Draining"),
		},
		{
			name:             "Terminating, routes released a drain ago: Terminated, finalizer removed",
			obs:              dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhTerminating, dtTransitioned(maxDrain+time.Second), dtLastStep(maxDrain))), dtDeleting()),
			wantPhase:        dtPhTerminated,
			wantActions:      dtActs(ScaleTargetUp, RestoreApex, FinalizeRoutes),
			wantEvents:       dtEvs("Terminated"),
			wantConds:        terminated,
			wantFinalizerOff: true,
		},
		{
			name:             "Terminating, target ready: Terminated",
			obs:              dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhTerminating)), dtDeleting()),
			wantPhase:        dtPhTerminated,
			wantActions:      dtActs(ScaleTargetUp, RestoreApex, FinalizeRoutes),
			wantEvents:       dtEvs("Terminated"),
			wantConds:        terminated,
			wantFinalizerOff: true,
		},
		{
			name:        "revertOnDeletion with the target ready: the same actions (routes are always finalized)",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded), dtRevertOnDeletion()), dtDeleting()),
			wantPhase:   dtPhTerminating,
			wantActions: dtActs(ScaleTargetUp, RestoreApex, FinalizeRoutes),
			wantRequeue: maxDrain,
			wantEvents:  dtEvs("Terminating"),
			wantConds:   dtReleasing("Draining"),
		},
		{
			name:             "target missing: Terminated directly, routes left to the garbage collector",
			obs:              dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), dtDeleting(), dtTargetMissing()),
			wantPhase:        dtPhTerminated,
			wantEvents:       dtEvs("Terminating", "Terminated"),
			wantConds:        terminated,
			wantFinalizerOff: true,
		},
		{
			name:             "target missing with revertOnDeletion: only the routes are finalized",
			obs:              dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded), dtRevertOnDeletion()), dtDeleting(), dtTargetMissing()),
			wantPhase:        dtPhTerminated,
			wantActions:      dtActs(FinalizeRoutes),
			wantEvents:       dtEvs("Terminating", "Terminated"),
			wantConds:        terminated,
			wantFinalizerOff: true,
		},
		{
			name:        "deleted mid-analysis: every route sent to the restored apex, then the drain",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20))), dtDeleting()),
			wantPhase:   dtPhTerminating,
			wantWeight:  20,
			wantActions: dtActs(ScaleTargetUp, RestoreApex, FinalizeRoutes),
			wantRequeue: maxDrain,
			wantEvents:  dtEvs("Terminating"),
			wantConds:   dtReleasing("Draining"),
		},
		{
			name:        "deletion wins over a stalled or suspended Canary",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded), dtSuspended()), dtDeleting(), dtStalledBy("UnknownProvider", "no router")),
			wantPhase:   dtPhTerminating,
			wantActions: dtActs(ScaleTargetUp, RestoreApex, FinalizeRoutes),
			wantRequeue: maxDrain,
			wantEvents:  dtEvs("Terminating"),
			wantConds:   dtReleasing("Draining"),
		},
	})
}

// ---------------------------------------------------------------------------
// Stalled and suspended

func TestDecide_StalledAndSuspended(t *testing.T) {
	dtRunCases(t, []dtDecideCase{
		{
			name:       "stalled mid-analysis: Stalled, not Ready, no actions",
			obs:        dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20))), dtStalledBy("UnknownProvider", "provider foo is not supported"), dtWithChecks(dtPassing())),
			wantPhase:  dtPhProgressing,
			wantWeight: 20,
			wantConds:  dtConds{progressing: true, reason: string(dtPhProgressing), stalled: "UnknownProvider"},
			check: func(g Gomega, d Decision) {
				g.Expect(dtCondOf(d, sluicev1beta1.ReadyCondition).Message).To(Equal("provider foo is not supported"))
			},
		},
		{
			name:      "stalled while idle: Stalled, not Ready, still Promoted",
			obs:       dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), dtStalledBy("TargetNotFound", "deployment podinfo not found"), dtTargetHash(dtHashB)),
			wantPhase: dtPhSucceeded,
			wantConds: dtConds{reason: string(dtPhSucceeded), stalled: "TargetNotFound"},
		},
		{
			name:      "stalled before initialization: phase stays empty",
			obs:       dtObserve(dtCanary(dtProgressive(), dtStatus("")), dtStalledBy("UnknownProvider", "no router")),
			wantPhase: "",
			wantConds: dtConds{reason: "Pending", stalled: "UnknownProvider"},
		},
		{
			name: "no longer stalled: the Stalled condition is removed",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded,
				dtCondition(sluicev1beta1.StalledCondition, metav1.ConditionTrue, "UnknownProvider")))),
			wantPhase:   dtPhSucceeded,
			wantActions: dtActs(EnsureObjects),
			wantConds:   dtSettled(dtPhSucceeded),
		},
		{
			name:      "suspended with a new revision: nothing happens",
			obs:       dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded), dtSuspended()), dtTargetHash(dtHashB), dtTargetScaledToZero(false)),
			wantPhase: dtPhSucceeded,
			wantConds: dtConds{reason: "Suspended"},
		},
		{
			name:       "suspended mid-analysis: no actions, Progressing reason Suspended",
			obs:        dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10)), dtSuspended()), dtWithChecks(dtPassing())),
			wantPhase:  dtPhProgressing,
			wantWeight: 10,
			wantConds:  dtReleasing("Suspended"),
		},
	})
}

// ---------------------------------------------------------------------------
// A whole release

func TestDecide_Lifecycle(t *testing.T) {
	g := NewWithT(t)
	c := dtCanary(dtProgressive(), dtStatus(""), dtHooks(dtHookConfirmRollout, dtHookConfirmPromote))

	// world is the cluster, changed by the actions as the reconciler would.
	world := struct {
		target, primary string
		targetScaled    bool
	}{target: dtHashA, primary: dtHashA}
	clock := dtNow
	var phases []sluicev1beta1.CanaryPhase
	var asked []CheckRequest
	reconcile := func(after time.Duration) Decision {
		clock = clock.Add(after)
		o := dtObserve(c, dtAt(clock), dtTargetHash(world.target), dtPrimaryHash(world.primary), dtTargetScaledToZero(world.targetScaled))
		d := Decide(o)
		if d.NeedChecks != nil {
			asked = append(asked, *d.NeedChecks)
			res := dtPassing()
			for _, gate := range d.NeedChecks.Gates {
				dtGated(res, gate, true)
			}
			o.Checks = res
			d = Decide(o)
			g.Expect(d.NeedChecks).To(BeNil())
		}
		for _, a := range d.Actions {
			switch a.Kind {
			case ScaleTargetToZero:
				world.targetScaled = true
			case ScaleTargetUp:
				world.targetScaled = false
			case PromotePrimary:
				world.primary = world.target
			}
		}
		c = dtWithStatus(c, d)
		phases = append(phases, d.Status.Phase)
		return d
	}

	d := reconcile(0)
	g.Expect(d.Status.Phase).To(Equal(dtPhInitialized))
	g.Expect(meta.IsStatusConditionTrue(d.Status.Conditions, sluicev1beta1.ReadyCondition)).To(BeTrue())
	g.Expect(world.targetScaled).To(BeFalse(), "the target was scaled down before the traffic drained from it")
	g.Expect(d.RequeueAfter).To(Equal(maxDrain))
	d = reconcile(maxDrain / 2)
	g.Expect(world.targetScaled).To(BeFalse(), "the target was scaled down before the traffic drained from it")
	d = reconcile(maxDrain / 2)
	g.Expect(world.targetScaled).To(BeTrue())

	world.target = dtHashB // a new revision
	d = reconcile(time.Minute)
	g.Expect(d.Status.Phase).To(Equal(dtPhProgressing))
	g.Expect(world.targetScaled).To(BeFalse())
	for _, w := range []int32{10, 20, 30} {
		d = reconcile(dtInterval)
		g.Expect(d.Status.CanaryWeight).To(Equal(w))
	}
	d = reconcile(dtInterval)
	g.Expect(d.Status.Phase).To(Equal(dtPhPromoting))
	g.Expect(world.primary).To(Equal(dtHashB))
	d = reconcile(waitRetry)
	g.Expect(d.Status.Phase).To(Equal(dtPhFinalising))
	g.Expect(world.targetScaled).To(BeFalse(), "the canary was scaled down before the traffic drained from it")
	d = reconcile(maxDrain)
	g.Expect(d.Status.Phase).To(Equal(dtPhFinalising))
	g.Expect(world.targetScaled).To(BeTrue())
	d = reconcile(waitRetry)
	g.Expect(d.Status.Phase).To(Equal(dtPhSucceeded))
	d = reconcile(time.Hour)

	g.Expect(phases).To(Equal([]sluicev1beta1.CanaryPhase{dtPhInitialized, dtPhInitialized, dtPhInitialized, dtPhProgressing,
		dtPhProgressing, dtPhProgressing, dtPhProgressing, dtPhPromoting, dtPhFinalising, dtPhFinalising, dtPhSucceeded, dtPhSucceeded}))
	g.Expect(asked).To(Equal([]CheckRequest{
		{Gates: []string{dtHookConfirmRollout}},
		{Analysis: dtHookPreRollout},
		{Analysis: dtHookRollout},
		{Analysis: dtHookRollout},
		{Gates: []string{dtHookConfirmPromote}, Analysis: dtHookRollout},
	}))
	g.Expect(d.Status.LastPromotedSpec).To(Equal(dtHashB))
	g.Expect(d.Status.CanaryWeight).To(BeZero())
	g.Expect(dtKinds(d.Actions)).To(Equal(dtActs(EnsureObjects)))
	g.Expect(d.RequeueAfter).To(BeZero())
	g.Expect(meta.IsStatusConditionTrue(d.Status.Conditions, sluicev1beta1.ReadyCondition)).To(BeTrue())
	g.Expect(meta.IsStatusConditionTrue(d.Status.Conditions, sluicev1beta1.PromotedCondition)).To(BeTrue())
	g.Expect(meta.IsStatusConditionTrue(d.Status.Conditions, sluicev1beta1.ProgressingCondition)).To(BeFalse())
	g.Expect(d.Status.History).To(HaveLen(4))
}

// ---------------------------------------------------------------------------
// Purity

func TestDecide_Purity(t *testing.T) {
	observations := map[string]Observation{
		"initializing":  dtObserve(dtCanary(dtProgressive(), dtStatus(""))),
		"new revision":  dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded), dtSessionAffinity()), dtTargetHash(dtHashB), dtNewCookie("c")),
		"checks asked":  dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10)), dtHooks(dtHookConfirmTraffic))),
		"weight step":   dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10))), dtWithChecks(dtPassing())),
		"failed check":  dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10), dtFailedChecks(1))), dtWithChecks(dtResults(dtMetric(sluicev1beta1.CheckFailed)))),
		"promotion":     dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhPromoting, dtWeight(30)), dtStepWeightPromotion(10))),
		"retry":         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFailed), dtAnnotate(dtAnnotationRetry, "1"))),
		"deletion":      dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded), dtRevertOnDeletion()), dtDeleting()),
		"settled conds": dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded, dtCondition(sluicev1beta1.ReadyCondition, metav1.ConditionTrue, "Succeeded")))),
	}
	for name, o := range observations {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			before := o.Canary.DeepCopy()
			d1 := Decide(o)
			d2 := Decide(o)
			g.Expect(d2).To(Equal(d1), "the same observation gives the same decision")
			g.Expect(o.Canary).To(Equal(before), "the input Canary is not mutated")

			// The decided status does not share memory with the input.
			if d1.NeedChecks == nil {
				d1.Status.Phase = "Mutated"
				if len(d1.Status.Conditions) > 0 {
					d1.Status.Conditions[0].Reason = "Mutated"
				}
				if len(d1.Status.History) > 0 {
					d1.Status.History[0].Message = "Mutated"
				}
				if d1.Status.HandledRequests != nil {
					d1.Status.HandledRequests.Retry = "Mutated"
				}
				g.Expect(o.Canary).To(Equal(before))
			}
		})
	}
}

// TestDecide_EveryPhase checks that every phase is a result of Decide (each
// is also asserted in detail by the tables above).
func TestDecide_EveryPhase(t *testing.T) {
	g := NewWithT(t)
	reached := map[sluicev1beta1.CanaryPhase]bool{}
	for _, o := range []Observation{
		dtObserve(dtCanary(dtProgressive(), dtStatus("")), dtPrimaryMissing()),
		dtObserve(dtCanary(dtProgressive(), dtStatus(""))),
		dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), dtTargetHash(dtHashB), dtSlotBusy()),
		dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), dtTargetHash(dtHashB)),
		dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(30)), dtHooks(dtHookConfirmPromote)), dtWithChecks(dtGated(dtPassing(), dtHookConfirmPromote, false))),
		dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(30))), dtWithChecks(dtPassing())),
		dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhPromoting, dtWeight(30)))),
		dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFinalising)), dtTargetScaledToZero(true)),
		dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10)), dtAnnotate(dtAnnotationAbort, "x"))),
		dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), dtDeleting(), dtTargetNotReady("0/1")),
		dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), dtDeleting()),
		dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhTerminating)), dtDeleting()),
	} {
		reached[Decide(o).Status.Phase] = true
	}
	for _, p := range []sluicev1beta1.CanaryPhase{dtPhInitializing, dtPhInitialized, dtPhWaiting, dtPhProgressing, dtPhWaitingPromotion,
		dtPhPromoting, dtPhFinalising, dtPhSucceeded, dtPhFailed, dtPhTerminating, dtPhTerminated} {
		g.Expect(reached).To(HaveKey(p), fmt.Sprintf("phase %s", p))
	}
}
