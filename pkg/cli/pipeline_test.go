package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Bundles of the test pipeline: web 1.0.0 to 1.3.0.
const (
	b100 = "aaaa000000000100"
	b110 = "aaaa000000000110"
	b120 = "aaaa000000000120"
	b130 = "aaaa000000000130"
)

var t0 = time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)

func at(m int) metav1.Time { return metav1.NewTime(t0.Add(time.Duration(m) * time.Minute)) }

func bundle(id, tag string, m int) sluicev1beta1.Bundle {
	return sluicev1beta1.Bundle{ID: id, CreatedAt: at(m), ConfigRevision: "main@sha1:" + strings.Repeat("c", 40), Images: []sluicev1beta1.BundleImage{{
		Source: "web", Repository: "registry.example.com/org/web", Tag: tag, Digest: "sha256:" + strings.Repeat(tag[2:3], 64),
	}}}
}

// webStatus is the story of issue 18: 1.0.0 and 1.1.0 went to production,
// 1.2.0 failed staging's analysis, 1.3.0 passed staging and waits for
// approval at production's manual gate.
func webStatus() sluicev1beta1.PipelineStatus {
	return sluicev1beta1.PipelineStatus{
		Conditions: []metav1.Condition{{Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionTrue, Reason: sluicev1beta1.PipelineReasonWaitingForApproval,
			Message: "production: bundle " + b130 + " waits for approval", LastTransitionTime: at(50)}},
		Bundles: []sluicev1beta1.Bundle{bundle(b100, "1.0.0", 0), bundle(b110, "1.1.0", 10), bundle(b120, "1.2.0", 20), bundle(b130, "1.3.0", 30)},
		Stages: []sluicev1beta1.PipelineStageStatus{
			{
				Name: "staging", Bundle: b130, Commit: strings.Repeat("3", 40), State: sluicev1beta1.StageVerified, Reason: sluicev1beta1.PipelineReasonSucceeded,
				Message: "verified by staging/web release 7f9c2d", Release: "7f9c2d", PromotedAt: ptrTo(at(40)), LastTransitionTime: ptrTo(at(45)),
				History: []sluicev1beta1.StageRecord{
					{Bundle: b100, Commit: strings.Repeat("0", 40), State: sluicev1beta1.StageVerified, Reason: sluicev1beta1.PipelineReasonSucceeded, Release: "5d8f7c", Time: at(10)},
					{Bundle: b110, Commit: strings.Repeat("1", 40), State: sluicev1beta1.StageVerified, Reason: sluicev1beta1.PipelineReasonSucceeded, Release: "6e9a0b", Time: at(20)},
					{Bundle: b120, Commit: strings.Repeat("2", 40), State: sluicev1beta1.StageFailed, Reason: sluicev1beta1.PipelineReasonVerificationFailed, Release: "6f0b1c", Time: at(30)},
				},
			},
			{
				Name: "production", Bundle: b110, Commit: strings.Repeat("b", 40), State: sluicev1beta1.StageVerified, Reason: sluicev1beta1.PipelineReasonSucceeded,
				Release: "8a1b2c", PromotedAt: ptrTo(at(25)), LastTransitionTime: ptrTo(at(26)),
				Gate: &sluicev1beta1.StageGate{Bundle: b130, Reason: sluicev1beta1.PipelineReasonWaitingForApproval,
					Message: "kubectl sluice promote-stage web production"},
				History: []sluicev1beta1.StageRecord{
					{Bundle: b100, Commit: strings.Repeat("a", 40), State: sluicev1beta1.StageVerified, Reason: sluicev1beta1.PipelineReasonSucceeded, Release: "4c7e6b", Time: at(22)},
				},
			},
		},
	}
}

// newWebPipeline creates a Pipeline with a staging stage (automatic) and a
// production stage (manual gate, on a Gitea pull request), and sets its status.
func newWebPipeline(t *testing.T, ns string, status sluicev1beta1.PipelineStatus, mutate ...func(*sluicev1beta1.Pipeline)) *sluicev1beta1.Pipeline {
	t.Helper()
	ctx := context.Background()
	p := &sluicev1beta1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: sluicev1beta1.PipelineSpec{
			Sources: []sluicev1beta1.PipelineSource{{Name: "web", Image: "registry.example.com/org/web", Policy: &sluicev1beta1.ImagePolicy{Semver: ">=1.0.0 <2.0.0"}}},
			Stages: []sluicev1beta1.PipelineStage{
				{Name: "staging", Git: sluicev1beta1.PipelineGit{GitSyncRef: &sluicev1beta1.PipelineObjectRef{Name: "staging"}, Path: "deploy/staging"},
					CanaryRef: sluicev1beta1.PipelineCanaryRef{Name: "web", Namespace: "staging"}},
				{Name: "production", Git: sluicev1beta1.PipelineGit{GitSyncRef: &sluicev1beta1.PipelineObjectRef{Name: "production"}, Path: "deploy/production"},
					CanaryRef: sluicev1beta1.PipelineCanaryRef{Name: "web", Namespace: "production"}, Approval: sluicev1beta1.ApprovalManual,
					Windows: []sluicev1beta1.PromotionWindow{{Start: "09:00", End: "16:00", TimeZone: "Europe/Paris"}}},
			},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	setPipelineStatus(t, p, status)
	return p
}

// setPipelineStatus writes a Pipeline's status, as the promotion controller would.
func setPipelineStatus(t *testing.T, p *sluicev1beta1.Pipeline, status sluicev1beta1.PipelineStatus) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		cur := &sluicev1beta1.Pipeline{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(p), cur); err != nil {
			return err
		}
		cur.Status = status
		return env.Client.Status().Update(context.Background(), cur)
	}).Should(Succeed())
}

func getPipeline(t *testing.T, ns string) *sluicev1beta1.Pipeline {
	t.Helper()
	p := &sluicev1beta1.Pipeline{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPromoteStage_ApprovesTheBundleWaitingAtTheGate(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newWebPipeline(t, ns, webStatus())

	r := kubectlSluice(context.Background(), "", "promote-stage", "web", "production", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).To(Equal("pipeline " + ns + "/web: promote-stage requested (sluice.dev/approve=production/" + b130 + ")\n"))
	g.Expect(getPipeline(t, ns).Annotations).To(HaveKeyWithValue(sluicev1beta1.PipelineApproveAnnotation, "production/"+b130))

	// A named bundle is approved ahead of its gate.
	r = kubectlSluice(context.Background(), "", "promote-stage", "web", "production", "--bundle", b120, "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(getPipeline(t, ns).Annotations).To(HaveKeyWithValue(sluicev1beta1.PipelineApproveAnnotation, "production/"+b120))
}

func TestPromoteStage_RefusesWhatTheControllerWouldReject(t *testing.T) {
	ctx := context.Background()
	noGate := webStatus()
	noGate.Stages[1].Gate = nil
	window := webStatus()
	window.Stages[1].Gate.Reason = sluicev1beta1.PipelineReasonOutsidePromotionWindow
	window.Stages[1].Gate.Message = "the next window opens at 2026-12-07T08:00:00Z"
	approved := webStatus()
	approved.Stages[1].Approvals = []sluicev1beta1.StageApproval{{Bundle: b130, Time: at(51)}}
	for _, tt := range []struct {
		name   string
		status sluicev1beta1.PipelineStatus
		args   []string
		want   string
	}{
		{"automatic stage", webStatus(), []string{"staging"}, "stage staging of pipeline NS/web has no manual gate (approval: Automatic)"},
		{"nothing waits", noGate, []string{"production"}, "no bundle waits for approval at stage production of pipeline NS/web"},
		{"waits for a window", window, []string{"production"}, "bundle " + b130 + " waits at stage production for OutsidePromotionWindow, not for approval (the next window opens at 2026-12-07T08:00:00Z); approve it ahead with --bundle " + b130},
		{"unknown bundle", webStatus(), []string{"production", "--bundle", "ffffffffffffffff"}, "pipeline NS/web has no bundle ffffffffffffffff in status.bundles"},
		{"unknown stage", webStatus(), []string{"prod"}, "pipeline NS/web has no stage prod: its stages are staging, production"},
		{"missing stage", webStatus(), nil, "promote-stage takes a PIPELINE and a STAGE (got 1 arguments)"},
		{"no timeout", webStatus(), []string{"production", "--timeout", "0s"}, "--timeout must be positive"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := namespace(t)
			newWebPipeline(t, ns, tt.status)
			r := kubectlSluice(ctx, "", append([]string{"promote-stage", "web", "-n", ns}, tt.args...)...)
			g.Expect(r.err).To(MatchError(ContainSubstring(strings.ReplaceAll(tt.want, "NS", ns))))
			g.Expect(getPipeline(t, ns).Annotations).To(BeEmpty())
		})
	}
	t.Run("already approved", func(t *testing.T) {
		g := NewWithT(t)
		ns := namespace(t)
		newWebPipeline(t, ns, approved)
		r := kubectlSluice(ctx, "", "promote-stage", "web", "production", "-n", ns)
		g.Expect(r.err).NotTo(HaveOccurred())
		g.Expect(r.out.String()).To(Equal("pipeline " + ns + "/web: bundle " + b130 + " is already approved for stage production\n"))
		g.Expect(getPipeline(t, ns).Annotations).To(BeEmpty())
	})
	t.Run("already handled", func(t *testing.T) {
		g := NewWithT(t)
		ns := namespace(t)
		st := webStatus()
		st.HandledRequests = &sluicev1beta1.PipelineHandledRequests{Approve: "production/" + b130}
		newWebPipeline(t, ns, st)
		r := kubectlSluice(ctx, "", "promote-stage", "web", "production", "-n", ns)
		g.Expect(r.err).To(MatchError(ContainSubstring("the request sluice.dev/approve=production/" + b130 + " was already handled by the controller")))
	})
}

// playController records a request as the promotion controller does once
// the annotation appears: handled, and (when accept) its effect on the stage.
func playController(t *testing.T, p *sluicev1beta1.Pipeline, annotation string, effect func(*sluicev1beta1.PipelineStatus, string)) {
	t.Helper()
	g := NewWithT(t)
	var value string
	g.Eventually(func() string {
		value = getPipeline(t, p.Namespace).Annotations[annotation]
		return value
	}).ShouldNot(BeEmpty())
	st := getPipeline(t, p.Namespace).Status
	effect(&st, value)
	setPipelineStatus(t, p, st)
}

func TestPromoteStage_WaitPrintsTheOutcome(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := namespace(t)
	p := newWebPipeline(t, ns, webStatus())

	r, wait := background(ctx, "promote-stage", "web", "production", "-n", ns, "--wait", "--timeout", "50s")
	playController(t, p, sluicev1beta1.PipelineApproveAnnotation, func(s *sluicev1beta1.PipelineStatus, v string) {
		s.HandledRequests = &sluicev1beta1.PipelineHandledRequests{Approve: v}
		s.Stages[1].Approvals = []sluicev1beta1.StageApproval{{Bundle: b130, Time: at(52)}}
		s.Stages[1].Gate = nil
		s.Stages[1].History = append(s.Stages[1].History, sluicev1beta1.StageRecord{Bundle: b110, State: sluicev1beta1.StageVerified, Time: at(52)})
		s.Stages[1].Bundle, s.Stages[1].State, s.Stages[1].Reason, s.Stages[1].Commit = b130, sluicev1beta1.StagePending, sluicev1beta1.PipelineReasonProgressing, ""
	})
	g.Expect(wait()).To(Succeed())
	g.Expect(r.out.String()).To(HaveSuffix("pipeline " + ns + "/web: approved; stage production is Pending with bundle " + b130 + "\n"))

	// The controller refused it (the bundle left status.bundles meanwhile): exit 1.
	ns = namespace(t)
	p = newWebPipeline(t, ns, webStatus())
	r, wait = background(ctx, "promote-stage", "web", "production", "-n", ns, "--wait", "--timeout", "50s")
	playController(t, p, sluicev1beta1.PipelineApproveAnnotation, func(s *sluicev1beta1.PipelineStatus, v string) {
		s.HandledRequests = &sluicev1beta1.PipelineHandledRequests{Approve: v}
	})
	err := wait()
	g.Expect(err).To(MatchError(ContainSubstring("the controller refused the approval (event ApprovalRejected): kubectl events -n " + ns + " --for pipeline/web")))
	g.Expect(ExitCode(err)).To(Equal(ExitFailed))
}

func TestPromoteStage_WaitTimesOutWithExitCode2(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newWebPipeline(t, ns, webStatus())
	r := kubectlSluice(context.Background(), "", "promote-stage", "web", "production", "-n", ns, "--wait", "--timeout", "1s")
	g.Expect(r.err).To(MatchError(ContainSubstring("the promote-stage request was not handled within 1s: is the Sluice manager running with --enable-promotion?")))
	g.Expect(ExitCode(r.err)).To(Equal(ExitTimeout))
}

func TestPromoteStage_DoesNotOverwriteAConcurrentChange(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	newWebPipeline(t, ns, webStatus())
	o := NewOptions(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &syncBuffer{}, ErrOut: &syncBuffer{}})
	o.ConfigFlags.KubeConfig = &kubeconfig
	stale := getPipeline(t, ns)

	// Someone approves another bundle after this command read the Pipeline.
	cur := getPipeline(t, ns)
	cur.Annotations = map[string]string{sluicev1beta1.PipelineApproveAnnotation: "production/" + b120}
	g.Expect(env.Client.Update(ctx, cur)).To(Succeed())

	r := &stageRequestOptions{Options: o, req: requestApprove}
	err := r.patchPipeline(ctx, stale, map[string]any{"metadata": map[string]any{
		"resourceVersion": stale.ResourceVersion,
		"annotations":     map[string]string{sluicev1beta1.PipelineApproveAnnotation: "production/" + b130},
	}})
	g.Expect(err).To(MatchError(ContainSubstring("pipeline " + ns + "/web changed while the request was prepared")))
	g.Expect(getPipeline(t, ns).Annotations).To(HaveKeyWithValue(sluicev1beta1.PipelineApproveAnnotation, "production/"+b120))
}

func TestRollbackStage_DefaultsToTheNewestBundleVerifiedBeforeTheCurrentOne(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := namespace(t)
	p := newWebPipeline(t, ns, webStatus())

	// staging runs 1.3.0; 1.2.0 failed there, so the default is 1.1.0.
	r := kubectlSluice(ctx, "", "rollback-stage", "web", "staging", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).To(Equal("pipeline " + ns + "/web: rollback-stage requested (sluice.dev/rollback-to=staging/" + b110 + ")\n"))
	g.Expect(getPipeline(t, ns).Annotations).To(HaveKeyWithValue(sluicev1beta1.PipelineRollbackAnnotation, "staging/"+b110))

	r, wait := background(ctx, "rollback-stage", "web", "production", "--to", b100, "-n", ns, "--wait", "--timeout", "50s")
	g.Eventually(func() string { return getPipeline(t, ns).Annotations[sluicev1beta1.PipelineRollbackAnnotation] }).Should(Equal("production/" + b100))
	playController(t, p, sluicev1beta1.PipelineRollbackAnnotation, func(s *sluicev1beta1.PipelineStatus, v string) {
		s.HandledRequests = &sluicev1beta1.PipelineHandledRequests{RollbackTo: v}
		s.Stages[1].Bundle, s.Stages[1].Rollback, s.Stages[1].State, s.Stages[1].Commit = b100, true, sluicev1beta1.StageCommitted, strings.Repeat("d", 40)
	})
	g.Expect(wait()).To(Succeed())
	g.Expect(r.out.String()).To(HaveSuffix("pipeline " + ns + "/web: rolling back; stage production is Committed with bundle " + b100 + "\n"))
}

func TestRollbackStage_RefusesABundleNeverVerifiedInTheStage(t *testing.T) {
	ctx := context.Background()
	fresh := webStatus()
	fresh.Stages[1].History = nil
	for _, tt := range []struct {
		name   string
		status sluicev1beta1.PipelineStatus
		args   []string
		want   string
	}{
		{"failed there", webStatus(), []string{"staging", "--to", b120}, "bundle " + b120 + " was never verified in stage staging of pipeline NS/web"},
		{"never there", webStatus(), []string{"production", "--to", b130}, "bundle " + b130 + " was never verified in stage production"},
		{"unknown bundle", webStatus(), []string{"production", "--to", "ffffffffffffffff"}, "pipeline NS/web has no bundle ffffffffffffffff in status.bundles"},
		{"no earlier bundle", fresh, []string{"production"}, "no earlier bundle was verified in stage production of pipeline NS/web"},
		{"unknown stage", webStatus(), []string{"qa"}, "pipeline NS/web has no stage qa"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := namespace(t)
			newWebPipeline(t, ns, tt.status)
			r := kubectlSluice(ctx, "", append([]string{"rollback-stage", "web", "-n", ns}, tt.args...)...)
			g.Expect(r.err).To(MatchError(ContainSubstring(strings.ReplaceAll(tt.want, "NS", ns))))
			g.Expect(getPipeline(t, ns).Annotations).To(BeEmpty())
		})
	}
	t.Run("already there", func(t *testing.T) {
		g := NewWithT(t)
		ns := namespace(t)
		newWebPipeline(t, ns, webStatus())
		r := kubectlSluice(ctx, "", "rollback-stage", "web", "production", "--to", b110, "-n", ns)
		g.Expect(r.err).NotTo(HaveOccurred())
		g.Expect(r.out.String()).To(Equal("pipeline " + ns + "/web: stage production already runs bundle " + b110 + " (Verified)\n"))
		g.Expect(getPipeline(t, ns).Annotations).To(BeEmpty())
	})
}

func TestGet_Pipelines(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	newWebPipeline(t, ns, webStatus())

	r := kubectlSluice(ctx, "", "get", "pipelines", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	got := rows(r.out.String())
	g.Expect(got).To(HaveLen(2))
	g.Expect(got[0]).To(Equal([]string{"NAME", "READY", "STAGES", "AGE", "MESSAGE"}))
	g.Expect(got[1][:3]).To(Equal([]string{"web", "True", "staging=1.3.0:Verified,production=1.1.0:Verified+WaitingForApproval"}))
	g.Expect(strings.Join(got[1][4:], " ")).To(Equal("production: bundle " + b130 + " waits for approval"))

	r = kubectlSluice(ctx, "", "get", "pipe", "web", "-n", ns, "-o", "yaml")
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).To(ContainSubstring("kind: Pipeline\n"))

	empty := namespace(t)
	r = kubectlSluice(ctx, "", "get", "pipelines", "-n", empty)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.errOut.String()).To(ContainSubstring("No pipelines found in namespace " + empty))
	g.Expect(kubectlSluice(ctx, "", "get", "pipeline", "missing", "-n", empty).err).To(MatchError(ContainSubstring("Pipeline missing not found in namespace " + empty)))
}

func TestStatus_PipelineShowsEveryStageAndTheBundles(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	newWebPipeline(t, ns, webStatus(), func(p *sluicev1beta1.Pipeline) {
		p.Spec.Stages[1].Hold = &sluicev1beta1.PipelineHold{Reason: "incident 42: pinned to 1.1.0"}
	})

	r := kubectlSluice(ctx, "", "status", "pipeline", "web", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	out := strings.ReplaceAll(r.out.String(), ns, "NS")
	golden := filepath.Join("testdata", "pipeline", "status.golden")
	if *update {
		g.Expect(os.MkdirAll(filepath.Dir(golden), 0o755)).To(Succeed())
		g.Expect(os.WriteFile(golden, []byte(out), 0o644)).To(Succeed())
	}
	want, err := os.ReadFile(golden)
	g.Expect(err).NotTo(HaveOccurred(), "run go test ./pkg/cli -run TestStatus_Pipeline -update to create the golden file")
	g.Expect(out).To(Equal(string(want)))

	r = kubectlSluice(ctx, "", "status", "pipe", "web", "-n", ns, "-o", "json")
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).To(ContainSubstring(`"kind": "Pipeline"`))
	g.Expect(kubectlSluice(ctx, "", "status", "canary", "web", "-n", ns).err).To(MatchError(ContainSubstring(`status takes one Canary NAME, or pipeline NAME (got "canary" "web")`)))
}
