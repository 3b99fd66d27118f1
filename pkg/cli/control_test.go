package cli

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// requestValue reads a manual-control annotation and checks it is a timestamp.
func requestValue(t *testing.T, ns, name, annotation string) string {
	t.Helper()
	v := getCanary(t, ns, name).Annotations[annotation]
	if v == "" {
		t.Fatalf("annotation %s not set on %s/%s", annotation, ns, name)
	}
	if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
		t.Fatalf("annotation %s=%q is not an RFC 3339 time: %v", annotation, v, err)
	}
	return v
}

func TestRequests_SetTheAnnotationsTheEngineReadsWithAFreshValueEachTime(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		verb       string
		annotation string
		phase      sluicev1beta1.CanaryPhase
	}{
		{"promote", sluicev1beta1.PromoteAnnotation, sluicev1beta1.CanaryPhaseProgressing},
		{"promote", sluicev1beta1.PromoteAnnotation, sluicev1beta1.CanaryPhaseWaitingPromotion},
		{"abort", sluicev1beta1.AbortAnnotation, sluicev1beta1.CanaryPhaseProgressing},
		{"retry", sluicev1beta1.RetryAnnotation, sluicev1beta1.CanaryPhaseFailed},
	} {
		t.Run(tt.verb+" when "+string(tt.phase), func(t *testing.T) {
			g := NewWithT(t)
			ns := namespace(t)
			newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: tt.phase, LastAppliedSpec: "b", LastPromotedSpec: "a"})
			r := kubectlSluice(ctx, "", tt.verb, "podinfo", "-n", ns)
			g.Expect(r.err).NotTo(HaveOccurred())
			first := requestValue(t, ns, "podinfo", tt.annotation)
			g.Expect(r.out.String()).To(ContainSubstring(tt.verb + " requested (" + tt.annotation + "=" + first + ")"))

			// The engine acts on a value it has not handled yet: a second
			// request must carry a new one.
			g.Eventually(func() string {
				g.Expect(kubectlSluice(ctx, "", tt.verb, "podinfo", "-n", ns).err).NotTo(HaveOccurred())
				return requestValue(t, ns, "podinfo", tt.annotation)
			}).ShouldNot(Equal(first))
		})
	}
}

func TestRequests_ThatTheEngineWouldIgnoreAreRefused(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		verb   string
		status sluicev1beta1.CanaryStatus
		want   string
	}{
		{"promote", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseSucceeded}, "is Succeeded: nothing is under analysis to promote"},
		{"promote", sluicev1beta1.CanaryStatus{}, "is Pending: nothing is under analysis to promote"},
		{"abort", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseFailed}, "is Failed: nothing is under analysis to abort"},
		{"retry", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing}, "is Progressing, not Failed: there is no failed revision to retry"},
		{"retry", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseWaiting, LastAppliedSpec: "a", LastPromotedSpec: "a"}, "is Waiting, not Failed"},
	} {
		t.Run(tt.verb+" when "+string(tt.status.Phase), func(t *testing.T) {
			g := NewWithT(t)
			ns := namespace(t)
			newCanary(t, ns, "podinfo", tt.status)
			r := kubectlSluice(ctx, "", tt.verb, "podinfo", "-n", ns)
			g.Expect(r.err).To(MatchError(ContainSubstring(tt.want)))
			g.Expect(getCanary(t, ns, "podinfo").Annotations).To(BeEmpty())
		})
	}
}

func TestRetry_AcceptsAFailedRevisionWaitingForASlot(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseWaiting, LastAppliedSpec: "new", LastPromotedSpec: "old"})
	g.Expect(kubectlSluice(context.Background(), "", "retry", "podinfo", "-n", ns).err).NotTo(HaveOccurred())
	requestValue(t, ns, "podinfo", sluicev1beta1.RetryAnnotation)
}

func TestPromote_WaitReturnsOnceTheEngineRecordsTheRequest(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := namespace(t)
	c := newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 10})

	r, wait := background(ctx, "promote", "podinfo", "-n", ns, "--wait", "--timeout", "50s")
	// Play the engine: handle the request once it appears.
	var value string
	g.Eventually(func() string {
		value = getCanary(t, ns, "podinfo").Annotations[sluicev1beta1.PromoteAnnotation]
		return value
	}).ShouldNot(BeEmpty())
	g.Consistently(r.out.String, "300ms").ShouldNot(ContainSubstring("handled"))
	setCanaryStatus(t, c, sluicev1beta1.CanaryStatus{
		Phase: sluicev1beta1.CanaryPhasePromoting, CanaryWeight: 10,
		HandledRequests: &sluicev1beta1.HandledRequests{Promote: value},
	})
	g.Expect(wait()).To(Succeed())
	g.Expect(r.out.String()).To(ContainSubstring("promote handled, phase Promoting"))
}

func TestAbort_WaitTimesOutWithExitCode2WhenNothingHandlesIt(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing})
	r := kubectlSluice(context.Background(), "", "abort", "podinfo", "-n", ns, "--wait", "--timeout", "1s")
	g.Expect(r.err).To(MatchError(ContainSubstring("the abort request was not handled within 1s: is the Sluice manager running?")))
	g.Expect(ExitCode(r.err)).To(Equal(ExitTimeout))
}

func TestSuspendResume_CanaryAndGitSync(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseSucceeded})
	gs := newGitSync(t, ns, "apps", false)

	r := kubectlSluice(ctx, "", "suspend", "podinfo", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).To(Equal("Canary " + ns + "/podinfo suspended\n"))
	g.Expect(getCanary(t, ns, "podinfo").Spec.Suspend).To(BeTrue())
	r = kubectlSluice(ctx, "", "suspend", "canary", "podinfo", "-n", ns)
	g.Expect(r.out.String()).To(Equal("Canary " + ns + "/podinfo is already suspended\n"))
	g.Expect(kubectlSluice(ctx, "", "resume", "podinfo", "-n", ns).err).NotTo(HaveOccurred())
	g.Expect(getCanary(t, ns, "podinfo").Spec.Suspend).To(BeFalse())

	g.Expect(kubectlSluice(ctx, "", "suspend", "gitsync", "apps", "-n", ns).err).NotTo(HaveOccurred())
	got := &sluicev1beta1.GitSync{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(gs), got)).To(Succeed())
	g.Expect(got.Spec.Suspend).To(BeTrue())
	g.Expect(kubectlSluice(ctx, "", "resume", "gs", "apps", "-n", ns).err).NotTo(HaveOccurred())
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(gs), got)).To(Succeed())
	g.Expect(got.Spec.Suspend).To(BeFalse())

	g.Expect(kubectlSluice(ctx, "", "suspend", "pods", "x", "-n", ns).err).To(MatchError(ContainSubstring(`unknown resource type "pods"`)))
	g.Expect(kubectlSluice(ctx, "", "resume", "gitsync", "missing", "-n", ns).err).To(MatchError(ContainSubstring("GitSync missing not found in namespace " + ns)))
}

func TestRequest_OnASuspendedCanaryWarns(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing},
		func(c *sluicev1beta1.Canary) { c.Spec.Suspend = true })
	r := kubectlSluice(context.Background(), "", "abort", "podinfo", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.errOut.String()).To(ContainSubstring("is suspended: the request is handled once it is resumed"))
	requestValue(t, ns, "podinfo", sluicev1beta1.AbortAnnotation)
}

func TestSync_SetsTheSyncRequestedAnnotation(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	gs := newGitSync(t, ns, "apps", false)
	newGitSync(t, ns, "paused", true)

	before := time.Now().Add(-time.Second)
	r := kubectlSluice(ctx, "", "sync", "apps", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	got := &sluicev1beta1.GitSync{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(gs), got)).To(Succeed())
	v := got.Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation]
	at, err := time.Parse(time.RFC3339Nano, v)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(at).To(BeTemporally(">", before))
	g.Expect(r.out.String()).To(ContainSubstring("sync requested (sluice.dev/sync-requested-at=" + v + ")"))

	r = kubectlSluice(ctx, "", "sync", "paused", "-n", ns)
	g.Expect(r.err).To(MatchError(ContainSubstring("is suspended, so it does not sync: resume it first")))
	r = kubectlSluice(ctx, "", "sync", "missing", "-n", ns)
	g.Expect(r.err).To(MatchError(ContainSubstring("GitSync missing not found in namespace " + ns)))
}

func TestSync_WaitReportsTheOutcomeTheControllerRecords(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		reason  string
		code    int
		wantOut string
		wantErr string
	}{
		{"succeeded", "", 0, "synced, applied revision main@sha1:", ""},
		{"failed", "FetchFailed", ExitFailed, "", "failed (FetchFailed): failed to fetch main: connection refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := namespace(t)
			gs := newGitSync(t, ns, "apps", false)
			r, wait := background(ctx, "sync", "apps", "-n", ns, "--wait", "--timeout", "50s")
			// Play the GitSync controller: record the request once synced.
			cur := &sluicev1beta1.GitSync{}
			g.Eventually(func() string {
				g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(gs), cur)).To(Succeed())
				return cur.Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation]
			}).ShouldNot(BeEmpty())
			cur.Status.LastHandledSyncRequest = cur.Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation]
			cur.Status.LastAppliedRevision = "main@sha1:0123456789abcdef0123456789abcdef01234567"
			if tt.reason != "" {
				cur.Status.LastFailureReason, cur.Status.LastFailureMessage = tt.reason, "failed to fetch main: connection refused"
			}
			g.Expect(env.Client.Status().Update(ctx, cur)).To(Succeed())
			err := wait()
			g.Expect(ExitCode(err)).To(Equal(tt.code), "%v", err)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			}
			g.Expect(r.out.String()).To(ContainSubstring(tt.wantOut))
		})
	}
	t.Run("timeout", func(t *testing.T) {
		g := NewWithT(t)
		ns := namespace(t)
		newGitSync(t, ns, "apps", false)
		r := kubectlSluice(ctx, "", "sync", "apps", "-n", ns, "--wait", "--timeout", "1s")
		g.Expect(r.err).To(MatchError(ContainSubstring("was not done within 1s: is the Sluice manager running?")))
		g.Expect(ExitCode(r.err)).To(Equal(ExitTimeout))
	})
}
