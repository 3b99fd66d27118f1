package promotion

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// t0 is a Monday, 10:00 UTC.
var t0 = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

func digestOf(tag string) string {
	h := sha256.Sum256([]byte(tag))
	return "sha256:" + hex.EncodeToString(h[:])
}

// commitFor is the commit a write of a bundle to a stage makes: the same
// write gives the same commit, as the Git writer finds its change already there.
func commitFor(stage, bundle string) string {
	h := sha1.Sum([]byte(stage + "/" + bundle))
	return hex.EncodeToString(h[:])
}

type stageOpt func(*sluicev1beta1.PipelineStage)

func manual() stageOpt {
	return func(s *sluicev1beta1.PipelineStage) { s.Approval = sluicev1beta1.ApprovalManual }
}

func soak(d time.Duration) stageOpt {
	return func(s *sluicev1beta1.PipelineStage) { s.SoakTime = &metav1.Duration{Duration: d} }
}

func window(zone, start, end string, days ...sluicev1beta1.Weekday) stageOpt {
	return func(s *sluicev1beta1.PipelineStage) {
		s.Windows = append(s.Windows, sluicev1beta1.PromotionWindow{Days: days, Start: start, End: end, TimeZone: zone})
	}
}

func pullRequests() stageOpt {
	return func(s *sluicev1beta1.PipelineStage) {
		s.Git.Push = &sluicev1beta1.PipelinePush{Strategy: sluicev1beta1.PushPullRequest, Provider: sluicev1beta1.GitProviderGitea}
	}
}

func stage(name string, opts ...stageOpt) sluicev1beta1.PipelineStage {
	s := sluicev1beta1.PipelineStage{
		Name:      name,
		Git:       sluicev1beta1.PipelineGit{GitSyncRef: &sluicev1beta1.PipelineObjectRef{Name: name}, Path: "deploy/" + name},
		CanaryRef: sluicev1beta1.PipelineCanaryRef{Name: "web", Namespace: name},
		Approval:  sluicev1beta1.ApprovalAutomatic,
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func newPipeline(stages ...sluicev1beta1.PipelineStage) *sluicev1beta1.Pipeline {
	return &sluicev1beta1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps", Generation: 1},
		Spec: sluicev1beta1.PipelineSpec{
			Sources: []sluicev1beta1.PipelineSource{{Name: "web", Image: "registry.test/org/web", Policy: &sluicev1beta1.ImagePolicy{Semver: ">=1.0.0"}}},
			Stages:  stages,
		},
	}
}

// world is a Pipeline, a registry, the stages' Canaries and a clock; decide
// runs Decide and does what a controller does: the writes (recording their
// commits) and the one status patch.
type world struct {
	t        *testing.T
	p        *sluicev1beta1.Pipeline
	now      time.Time
	images   map[string]ScanResult
	canaries map[string]*sluicev1beta1.Canary
	prs      map[string]*PullRequest
	found    map[string]string
	// soakChecks are metric checks observed by the next decide only.
	soakChecks map[string]*SoakChecks
	// writes are all the writes made, in order.
	writes []Write
	// failWrite, when set, makes the next write of a stage fail with it.
	failWrite map[string]Reason
	last      Decision
}

func newWorld(t *testing.T, p *sluicev1beta1.Pipeline) *world {
	w := &world{t: t, p: p, now: t0, images: map[string]ScanResult{}, canaries: map[string]*sluicev1beta1.Canary{},
		prs: map[string]*PullRequest{}, found: map[string]string{}, failWrite: map[string]Reason{}}
	for _, s := range p.Spec.Stages {
		w.canaries[s.Name] = &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: s.Name}}
	}
	return w
}

// push makes tag the latest image of the source web.
func (w *world) push(tag string) {
	w.images["web"] = ScanResult{Image: Image{Repository: "registry.test/org/web", Tag: tag, Digest: digestOf(tag)}}
}

func (w *world) observation() Observation {
	o := Observation{Images: w.images, ConfigRevision: "main@sha1:" + commitFor("config", "base"), Stages: map[string]StageObservation{}}
	for name, c := range w.canaries {
		o.Stages[name] = StageObservation{Canary: c.DeepCopy(), PullRequest: w.prs[name], Commit: w.found[name], SoakChecks: w.soakChecks[name]}
	}
	w.soakChecks = nil
	return o
}

// decide decides and acts; it returns the decision as patched.
func (w *world) decide() Decision {
	w.t.Helper()
	d := Decide(w.p, w.observation(), w.now)
	for _, wr := range d.Writes {
		w.writes = append(w.writes, wr)
		if r, ok := w.failWrite[wr.Stage]; ok {
			delete(w.failWrite, wr.Stage)
			d.RecordWriteFailure(wr.Stage, r)
			continue
		}
		sha := commitFor(wr.Stage, wr.Bundle.ID)
		if w.stageSpec(wr.Stage).Git.Push != nil {
			d.RecordPullRequest(wr.Stage, "https://git.test/org/deploy/pulls/"+sha[:4])
			continue
		}
		d.RecordCommit(wr.Stage, sha)
	}
	w.p.Status = d.Status
	w.last = d
	return d
}

func (w *world) stageSpec(name string) *sluicev1beta1.PipelineStage {
	for i := range w.p.Spec.Stages {
		if w.p.Spec.Stages[i].Name == name {
			return &w.p.Spec.Stages[i]
		}
	}
	w.t.Fatalf("no stage %s", name)
	return nil
}

func (w *world) status(name string) sluicev1beta1.PipelineStageStatus {
	for _, s := range w.p.Status.Stages {
		if s.Name == name {
			return s
		}
	}
	w.t.Fatalf("no stage status %s", name)
	return sluicev1beta1.PipelineStageStatus{}
}

// release makes the stage's Canary record a release of the stage's current
// commit that ends with the outcome (Running: started, not ended).
func (w *world) release(stage string, outcome sluicev1beta1.DeliveryOutcome) {
	w.t.Helper()
	commit := w.status(stage).Commit
	if commit == "" {
		w.t.Fatalf("stage %s has no commit to release", stage)
	}
	w.releaseCommit(stage, commit, outcome)
}

func (w *world) releaseCommit(stage, commit string, outcome sluicev1beta1.DeliveryOutcome) {
	c := w.canaries[stage]
	if c.Status.Delivery == nil {
		c.Status.Delivery = &sluicev1beta1.DeliveryStatus{}
	}
	rev := "r" + commit[:8]
	rs := c.Status.Delivery.Releases
	if n := len(rs); n > 0 && rs[n-1].Revision == rev {
		rs = rs[:n-1]
	}
	rec := sluicev1beta1.DeliveryRecord{Revision: rev, SourceRevision: "main@sha1:" + commit, StartTime: metav1.NewTime(w.now), Outcome: outcome}
	if outcome != sluicev1beta1.DeliveryRunning {
		rec.EndTime = ptrTime(w.now)
	}
	if outcome == sluicev1beta1.DeliveryRolledBack {
		rec.Cause = sluicev1beta1.RollbackAnalysis
	}
	c.Status.Delivery.Releases = append(rs, rec)
	c.Status.Source = &sluicev1beta1.ReleaseSource{GitSyncName: stage, GitSyncNamespace: stage, Revision: "main@sha1:" + commit, Release: rev}
}

// writesTo are the writes made to a stage, in order.
func (w *world) writesTo(stage string) []Write {
	var ws []Write
	for _, wr := range w.writes {
		if wr.Stage == stage {
			ws = append(ws, wr)
		}
	}
	return ws
}

func bundleIDOf(tag string) string {
	return BundleID([]sluicev1beta1.BundleImage{{Source: "web", Repository: "registry.test/org/web", Tag: tag, Digest: digestOf(tag)}})
}

func condition(s sluicev1beta1.PipelineStatus, t string) *metav1.Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}
