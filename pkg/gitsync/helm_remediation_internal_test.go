package gitsync

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func remediationReconciler(t *testing.T) *GitSyncReconciler {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	return &GitSyncReconciler{Client: c, APIReader: c}
}

func chartObjects(image string) []*unstructured.Unstructured {
	return []*unstructured.Unstructured{{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "web"}, "data": map[string]any{"image": image}}}}
}

func helmGitSync(remediation bool) *sluicev1beta1.GitSync {
	gs := &sluicev1beta1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", UID: "uid", Generation: 1},
		Spec: sluicev1beta1.GitSyncSpec{Helm: &sluicev1beta1.GitSyncHelm{}}}
	if remediation {
		gs.Spec.Helm.Upgrade = &sluicev1beta1.GitSyncHelmUpgrade{Remediation: &sluicev1beta1.GitSyncHelmUpgradeRemediation{Retries: 1}}
	}
	return gs
}

var errUnhealthy = fail(ReasonHealthCheckFailed, false, errors.New("health check failed: timeout waiting for: [Deployment/apps/web status: 'InProgress']"))

// sync plays one sync of objs through the plan: healthy or not.
func playSync(t *testing.T, r *GitSyncReconciler, gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus, version, image string, healthy bool) ([]*unstructured.Unstructured, error) {
	t.Helper()
	rel := &helmRelease{chart: "web", version: version, valuesDigest: "sha256:v"}
	p, objs, next, err := r.helmRemediation(context.Background(), gs, status, rel, "main@sha1:1", chartObjects(image))
	if err != nil {
		return nil, err
	}
	if (next == nil) != (p.rollback != nil) {
		t.Fatalf("the release to go on with is %v during a rollback to %v: nil exactly while rolling back", next, p.rollback)
	}
	var outcome error
	if !healthy {
		outcome = errUnhealthy
	}
	return objs, p.finish(context.Background(), outcome)
}

func TestHelmPlan_FirstInstallIsNotRemediated(t *testing.T) {
	g := NewWithT(t)
	r, gs, status := remediationReconciler(t), helmGitSync(true), &sluicev1beta1.GitSyncStatus{}
	for range 3 {
		_, err := playSync(t, r, gs, status, "1.0.0", "v1", false)
		g.Expect(err).To(MatchError(errUnhealthy))
	}
	g.Expect(status.Helm.Remediation).To(BeNil(), "nothing healthy to roll back to")
	g.Expect(status.Helm.History).To(BeEmpty())
}

func TestHelmPlan_WithoutRemediationAFailureIsOnlyRecorded(t *testing.T) {
	g := NewWithT(t)
	r, gs, status := remediationReconciler(t), helmGitSync(false), &sluicev1beta1.GitSyncStatus{}
	_, err := playSync(t, r, gs, status, "1.0.0", "v1", true)
	g.Expect(err).NotTo(HaveOccurred())
	for range 3 {
		objs, err := playSync(t, r, gs, status, "2.0.0", "v2", false)
		g.Expect(err).To(MatchError(errUnhealthy))
		g.Expect(objs).To(Equal(chartObjects("v2")), "never rolled back")
	}
	g.Expect(status.Helm.Remediation).To(BeNil())
	g.Expect(revisions(status.Helm.History)).To(Equal([]int32{1}))
}

// TestHelmPlan_RetriesThenRollsBackUntilTheInputsChange: with retries 1,
// the second failure rolls back; the same inputs stay rolled back; a new
// generation is a new attempt, which becoming healthy keeps its revision.
func TestHelmPlan_RetriesThenRollsBackUntilTheInputsChange(t *testing.T) {
	g := NewWithT(t)
	r, gs, status := remediationReconciler(t), helmGitSync(true), &sluicev1beta1.GitSyncStatus{}
	_, err := playSync(t, r, gs, status, "1.0.0", "v1", true)
	g.Expect(err).NotTo(HaveOccurred())

	objs, err := playSync(t, r, gs, status, "2.0.0", "v2", false)
	g.Expect(err).To(MatchError(errUnhealthy))
	g.Expect(objs).To(Equal(chartObjects("v2")))
	g.Expect(status.Helm.Remediation.Failures).To(BeEquivalentTo(1))
	_, err = playSync(t, r, gs, status, "2.0.0", "v2", false)
	g.Expect(err).To(MatchError(errUnhealthy))
	g.Expect(status.Helm.Remediation.Failures).To(BeEquivalentTo(2))

	// Retries exhausted: the next sync applies revision 1's objects.
	for range 2 {
		objs, err = playSync(t, r, gs, status, "2.0.0", "v2", true)
		g.Expect(objs).To(Equal(chartObjects("v1")))
		var se *syncError
		g.Expect(errors.As(err, &se)).To(BeTrue())
		g.Expect(se.reason).To(Equal(ReasonHelmUpgradeFailed))
		g.Expect(se.stalled).To(BeTrue())
		g.Expect(err.Error()).To(Equal("the upgrade to chart web 2.0.0 (revision 2) failed its health checks 2 times: " +
			"health check failed: timeout waiting for: [Deployment/apps/web status: 'InProgress']; rolled back to revision 1 (chart web 1.0.0)"))
	}
	g.Expect(status.Helm.Remediation.Failures).To(BeEquivalentTo(2), "a rollback counts no failure")
	g.Expect(status.Helm.Remediation.RolledBackTo).To(BeEquivalentTo(1))
	g.Expect(status.Helm.ChartVersion).To(Equal("1.0.0"))
	g.Expect(findRelease(status.Helm.History, 2).Status).To(Equal(sluicev1beta1.GitSyncHelmReleaseRolledBack))

	// A spec change (a longer timeout, say) is a new attempt.
	gs.Generation++
	objs, err = playSync(t, r, gs, status, "2.0.0", "v2", true)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(objs).To(Equal(chartObjects("v2")))
	g.Expect(status.Helm.Remediation).To(BeNil())
	g.Expect(revisions(status.Helm.History)).To(Equal([]int32{1, 2}))
	g.Expect(findRelease(status.Helm.History, 1).Status).To(Equal(sluicev1beta1.GitSyncHelmReleaseSuperseded))
	g.Expect(findRelease(status.Helm.History, 2).Status).To(Equal(sluicev1beta1.GitSyncHelmReleaseDeployed))
}

// TestHelmPlan_AReleaseThatWasHealthyIsNotRolledBack: the Deployed
// release failing later (a node lost) is no upgrade to undo.
func TestHelmPlan_AReleaseThatWasHealthyIsNotRolledBack(t *testing.T) {
	g := NewWithT(t)
	r, gs, status := remediationReconciler(t), helmGitSync(true), &sluicev1beta1.GitSyncStatus{}
	_, err := playSync(t, r, gs, status, "1.0.0", "v1", true)
	g.Expect(err).NotTo(HaveOccurred())
	for range 3 {
		objs, err := playSync(t, r, gs, status, "1.0.0", "v1", false)
		g.Expect(err).To(MatchError(errUnhealthy))
		g.Expect(objs).To(Equal(chartObjects("v1")))
	}
	g.Expect(status.Helm.Remediation).To(BeNil())
}
