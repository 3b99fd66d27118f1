package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/commitstatus"
)

// The commit statuses of Canary releases read the GitSync that started the
// release and its commit status Secret, uncached.
// +kubebuilder:rbac:groups=sluice.dev,resources=gitsyncs,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// commitStatusTimeout bounds one post with its retries.
const commitStatusTimeout = time.Minute

// announcers fans an announcement out to several announcers, in order.
type announcers []canary.Announcer

var _ canary.StepAnnouncer = announcers{}

// Announce implements canary.Announcer.
func (as announcers) Announce(c *sluicev1beta1.Canary, e canary.Event, severity string, failed []sluicev1beta1.CheckResult) {
	for _, a := range as {
		a.Announce(c, e, severity, failed)
	}
}

// AnnounceStep implements canary.StepAnnouncer for the announcers that do.
func (as announcers) AnnounceStep(c *sluicev1beta1.Canary, e canary.Event) {
	for _, a := range as {
		if sa, ok := a.(canary.StepAnnouncer); ok {
			sa.AnnounceStep(c, e)
		}
	}
}

// commitStatusJob is one status to post for a Canary release.
type commitStatusJob struct {
	canary *sluicev1beta1.Canary
	state  commitstatus.State
	desc   string
}

// commitStatuses posts the outcome of a Canary release to the commit whose
// GitSync revision started it (status.source), with that GitSync's
// spec.commitStatus. Announce never blocks: jobs wait in bounded queues,
// one per worker, and the jobs of one Canary always go to the same worker
// so that its statuses arrive in order.
type commitStatuses struct {
	reader   client.Reader
	cluster  string
	log      logr.Logger
	recorder events.EventRecorder
	// base supplies the HTTP client and the retry settings (tests).
	base commitstatus.Config

	mu      sync.RWMutex
	stopped bool
	queues  []chan commitStatusJob
}

var (
	_ canary.Announcer     = (*commitStatuses)(nil)
	_ canary.StepAnnouncer = (*commitStatuses)(nil)
)

// newCommitStatuses returns the announcer; Start runs its workers.
func newCommitStatuses(reader client.Reader, cluster string, log logr.Logger, recorder events.EventRecorder, workers, size int) *commitStatuses {
	a := &commitStatuses{reader: reader, cluster: cluster, log: log, recorder: recorder}
	for range workers {
		a.queues = append(a.queues, make(chan commitStatusJob, size))
	}
	return a
}

// Announce implements canary.Announcer: a release started by a GitSync
// revision gets pending while it is analysed, success when promoted and
// failure when rolled back. The engine calls it once per transition, after
// the status patch that records it.
func (a *commitStatuses) Announce(c *sluicev1beta1.Canary, e canary.Event, _ string, failed []sluicev1beta1.CheckResult) {
	if state, desc, ok := canaryCommitStatus(c, e, failed); ok {
		a.enqueue(c, state, desc)
	}
}

// AnnounceStep implements canary.StepAnnouncer: each weight step updates
// the pending status with the new weight.
func (a *commitStatuses) AnnounceStep(c *sluicev1beta1.Canary, e canary.Event) {
	switch e.Reason {
	case "WeightIncreased":
		a.enqueue(c, commitstatus.Pending, fmt.Sprintf("Analysing at %d%% canary weight", c.Status.CanaryWeight))
	case "PromotionStep":
		a.enqueue(c, commitstatus.Pending, fmt.Sprintf("Promoting: %d%% canary weight", c.Status.CanaryWeight))
	}
}

// enqueue queues a status for the release of c, if a GitSync revision
// started it.
func (a *commitStatuses) enqueue(c *sluicev1beta1.Canary, state commitstatus.State, desc string) {
	src := c.Status.Source
	// A source recorded for an earlier release says nothing of this one.
	if src == nil || src.Revision == "" || src.Release != c.Status.Revision {
		return
	}
	j := commitStatusJob{canary: c, state: state, desc: desc}
	h := fnv.New64a()
	_, _ = h.Write([]byte(c.Namespace + "/" + c.Name))
	q := a.queues[h.Sum64()%uint64(len(a.queues))]
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.stopped {
		a.log.Info("Dropping a commit status: shutting down", "Canary", klog.KObj(c), "state", string(state))
		return
	}
	select {
	case q <- j:
	default:
		a.log.Info("Dropping a commit status: the queue is full", "Canary", klog.KObj(c), "state", string(state))
	}
}

// canaryCommitStatus maps an announced event to a commit status.
func canaryCommitStatus(c *sluicev1beta1.Canary, e canary.Event, failed []sluicev1beta1.CheckResult) (commitstatus.State, string, bool) {
	switch sluicev1beta1.CanaryPhase(e.Reason) {
	case sluicev1beta1.CanaryPhaseSucceeded:
		return commitstatus.Success, "Promoted" + revisionOf(c), true
	case sluicev1beta1.CanaryPhaseFailed:
		why := e.Message
		if len(failed) > 0 {
			why = failedCheck(failed[0])
		}
		return commitstatus.Failure, "Rolled back: " + why, true
	case sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseWaiting, sluicev1beta1.CanaryPhaseWaitingPromotion:
		return commitstatus.Pending, fmt.Sprintf("Analysing at %d%% canary weight", c.Status.CanaryWeight), true
	}
	switch e.Reason {
	case "CheckFailed", "CheckHeld":
		desc := fmt.Sprintf("Analysing at %d%% canary weight, %d failed checks", c.Status.CanaryWeight, c.Status.FailedChecks)
		if len(failed) > 0 {
			desc += ": " + failedCheck(failed[0])
		}
		return commitstatus.Pending, desc, true
	case "Restarted":
		return commitstatus.Pending, "Analysis restarted at 0% canary weight", true
	case "AnalysisInconclusive":
		desc := fmt.Sprintf("Paused at %d%% canary weight for promote or abort", c.Status.CanaryWeight)
		if len(failed) > 0 {
			desc += ": " + failedCheck(failed[0])
		}
		return commitstatus.Pending, desc, true
	}
	return "", "", false
}

func failedCheck(r sluicev1beta1.CheckResult) string {
	s := r.Name + " " + string(r.Outcome)
	if r.Value != nil {
		s += " (" + *r.Value + ")"
	}
	if r.Message != "" {
		s += ": " + r.Message
	}
	return s
}

func revisionOf(c *sluicev1beta1.Canary) string {
	if c.Status.Revision == "" {
		return ""
	}
	return " (canary revision " + c.Status.Revision + ")"
}

// Start runs the workers until ctx ends, then drains the queues for at
// most ten seconds.
func (a *commitStatuses) Start(ctx context.Context) error {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var wg sync.WaitGroup
	for _, q := range a.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range q {
				a.post(work, j)
			}
		}()
	}
	<-ctx.Done()
	a.mu.Lock()
	a.stopped = true
	for _, q := range a.queues {
		close(q)
	}
	a.mu.Unlock()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cancel()
		<-done
	}
	return nil
}

// post reads the GitSync of the release and posts the status. Failures are
// logged (the provider logs a refusal once) and a Warning event on the
// Canary; they never touch the release.
func (a *commitStatuses) post(ctx context.Context, j commitStatusJob) {
	c, src := j.canary, j.canary.Status.Source
	log := a.log.WithValues("Canary", klog.KObj(c), "GitSync", klog.KRef(src.GitSyncNamespace, src.GitSyncName), "state", string(j.state))
	ctx, cancel := context.WithTimeout(ctx, commitStatusTimeout)
	defer cancel()
	gs := &sluicev1beta1.GitSync{}
	if err := a.reader.Get(ctx, types.NamespacedName{Namespace: src.GitSyncNamespace, Name: src.GitSyncName}, gs); err != nil {
		if !apierrors.IsNotFound(err) {
			a.failed(c, j, log, fmt.Errorf("failed to read GitSync %s/%s: %w", src.GitSyncNamespace, src.GitSyncName, err), false)
		}
		return
	}
	if gs.Spec.CommitStatus == nil {
		return
	}
	// The source comes from annotations on the target: post only when the
	// GitSync really applies this Canary or its target, so that a forged
	// annotation cannot borrow another GitSync's token.
	if !applies(gs, c) {
		log.Info("Not setting the commit status: the GitSync does not apply this Canary or its target")
		return
	}
	base := a.base
	base.Logger = log.WithName("commit-status")
	p, err := commitstatus.ForGitSync(ctx, a.reader, gs, base)
	if err != nil {
		a.failed(c, j, log, err, false)
		return
	}
	err = p.Set(ctx, commitstatus.Status{
		SHA: commitstatus.SHAFromRevision(src.Revision), State: j.state,
		Context: commitstatus.CanaryContext(gs, a.cluster, c), Description: j.desc,
	})
	if err != nil {
		a.failed(c, j, log, err, true) // the provider logged it
	}
}

// failed logs err unless logged and records a Warning event on the Canary.
func (a *commitStatuses) failed(c *sluicev1beta1.Canary, j commitStatusJob, log logr.Logger, err error, logged bool) {
	if !logged {
		log.Error(err, "Cannot set the commit status")
	}
	if a.recorder != nil {
		a.recorder.Eventf(c, nil, corev1.EventTypeWarning, "CommitStatusFailed", "SetCommitStatus",
			"failed to set the %s commit status: %s", j.state, err.Error())
	}
}

// applies tells whether gs's inventory holds the Canary or its target.
func applies(gs *sluicev1beta1.GitSync, c *sluicev1beta1.Canary) bool {
	for _, e := range gs.Status.Inventory {
		if e.Namespace != c.Namespace {
			continue
		}
		if (e.Kind == "Canary" && e.Group == sluicev1beta1.GroupVersion.Group && e.Name == c.Name) ||
			(e.Kind == c.Spec.TargetRef.Kind && e.Name == c.Spec.TargetRef.Name) {
			return true
		}
	}
	return false
}
