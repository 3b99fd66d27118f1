package gitsync_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

const reportCronJob = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          initContainers:
            - {name: migrate, image: "ghcr.io/example/web:1.0.0"}
          containers:
            - {name: report, image: "ghcr.io/example/web:1.0.0"}
`

const labelledConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {tier: frontend}
data: {level: debug}
`

func getCronJob(g Gomega, ns, name string) *batchv1.CronJob {
	c := &batchv1.CronJob{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, c)).To(Succeed())
	return c
}

// TestGitSync_PatchesAndImages applies a strategic merge patch, a JSON 6902
// patch by label, and image overrides, before postBuild; a new spec.images
// is applied at once; a malformed patch fails the sync naming it, and then
// nothing is applied or pruned.
func TestGitSync_PatchesAndImages(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "patches")
	good := r.write("initial", map[string]string{
		"app/kustomization.yaml": "resources: [deployment.yaml, cronjob.yaml, settings.yaml]\n",
		"app/deployment.yaml":    deploymentYAML("web", "ghcr.io/example/web:1.0.0", 1),
		"app/cronjob.yaml":       reportCronJob,
		"app/settings.yaml":      labelledConfigMap,
	})
	newGitSync(t, ns, "app", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Path = "app"
		gs.Spec.Patches = []sluicev1beta1.GitSyncPatch{
			// The variable it brings is substituted by postBuild: patches come first.
			{Patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 3\n  template:\n    metadata:\n      labels: {env: \"${ENV}\"}\n"},
			{
				Patch:  "- op: replace\n  path: /data/level\n  value: info\n",
				Target: &sluicev1beta1.GitSyncPatchTarget{Kind: "ConfigMap", LabelSelector: "tier=frontend"},
			},
		}
		gs.Spec.Images = []sluicev1beta1.GitSyncImage{{Name: "ghcr.io/example/web", NewTag: "1.4.2"}}
		gs.Spec.PostBuild = &sluicev1beta1.GitSyncPostBuild{Substitute: map[string]string{"ENV": "production"}}
	})

	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, wait).Should(Succeed())
	d := getDeployment(g, ns, "web")
	g.Expect(*d.Spec.Replicas).To(BeEquivalentTo(3))
	g.Expect(d.Spec.Template.Labels).To(HaveKeyWithValue("env", "production"))
	g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/example/web:1.4.2"))
	cj := getCronJob(g, ns, "report").Spec.JobTemplate.Spec.Template.Spec
	g.Expect(cj.InitContainers[0].Image).To(Equal("ghcr.io/example/web:1.4.2"))
	g.Expect(cj.Containers[0].Image).To(Equal("ghcr.io/example/web:1.4.2"))
	g.Expect(configMap(g, ns, "settings").Data["level"]).To(Equal("info"))

	// A new spec.images is a new generation: applied without a new commit.
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	gs := getGitSync(g, ns, "app")
	gs.Spec.Images = []sluicev1beta1.GitSyncImage{{Name: "ghcr.io/example/web", NewName: "mirror.example.com/web", Digest: digest}}
	g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(getDeployment(g, ns, "web").Spec.Template.Spec.Containers[0].Image).To(Equal("mirror.example.com/web@" + digest))
		g.Expect(getCronJob(g, ns, "report").Spec.JobTemplate.Spec.Template.Spec.InitContainers[0].Image).To(Equal("mirror.example.com/web@" + digest))
		g.Expect(getGitSync(g, ns, "app").Status.ObservedGeneration).To(Equal(gs.Generation))
	}, wait).Should(Succeed())

	// The second patch breaks, then the CronJob leaves Git: nothing is
	// applied (the Deployment keeps 3 replicas) and nothing is pruned.
	gs = getGitSync(g, ns, "app")
	gs.Spec.Patches[0].Patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 4}\n"
	gs.Spec.Patches[1].Patch = "- op: replace\n  path: /data/absent/level\n  value: info\n"
	g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c.Reason).To(Equal("BuildFailed"))
	}, wait).Should(Succeed())
	removed := r.write("no cronjob", map[string]string{"app/kustomization.yaml": "resources: [deployment.yaml, settings.yaml]\n"})
	g.Eventually(func(g Gomega) {
		gs := getGitSync(g, ns, "app")
		g.Expect(gs.Status.LastAttemptedRevision).To(Equal("main@sha1:" + removed))
		c := ready(g, ns, "app")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("BuildFailed"))
		g.Expect(c.Message).To(ContainSubstring("spec.patches[1]"))
		g.Expect(gs.Status.LastFailureReason).To(Equal("BuildFailed"))
		g.Expect(gs.Status.LastAppliedRevision).To(Equal("main@sha1:" + good))
		g.Expect(gs.Status.Inventory).To(HaveLen(3))
	}, wait).Should(Succeed())
	t.Log(ready(g, ns, "app").Message)
	g.Consistently(func(g Gomega) {
		g.Expect(*getDeployment(g, ns, "web").Spec.Replicas).To(BeEquivalentTo(3))
		getCronJob(g, ns, "report")
	}, 3*time.Second).Should(Succeed())

	// Fixed: the new revision is applied and the CronJob pruned.
	gs = getGitSync(g, ns, "app")
	gs.Spec.Patches = gs.Spec.Patches[:1]
	g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(*getDeployment(g, ns, "web").Spec.Replicas).To(BeEquivalentTo(4))
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "report"}, &batchv1.CronJob{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "cronjob not pruned: %v", err)
	}, wait).Should(Succeed())
}

// TestGitSync_PatchesInvalidSpecRejected: the real API server refuses
// what the sync could not use, with a message that says what to change.
func TestGitSync_PatchesInvalidSpecRejected(t *testing.T) {
	ns := namespace(t)
	for _, tt := range []struct {
		name    string
		mutate  func(*sluicev1beta1.GitSync)
		message string
	}{
		{"JSON 6902 without target", func(gs *sluicev1beta1.GitSync) {
			gs.Spec.Patches = []sluicev1beta1.GitSyncPatch{{Patch: `[{"op": "remove", "path": "/spec/replicas"}]`}}
		}, "needs a target"},
		{"image without change", func(gs *sluicev1beta1.GitSync) {
			gs.Spec.Images = []sluicev1beta1.GitSyncImage{{Name: "web"}}
		}, "needs newName, newTag or digest"},
		{"bad digest", func(gs *sluicev1beta1.GitSync) {
			gs.Spec.Images = []sluicev1beta1.GitSyncImage{{Name: "web", Digest: "sha256:123"}}
		}, "64 lower-case hex digits"},
		{"bad label selector", func(gs *sluicev1beta1.GitSync) {
			gs.Spec.Patches = []sluicev1beta1.GitSyncPatch{{Patch: "x: y", Target: &sluicev1beta1.GitSyncPatchTarget{LabelSelector: "app in web"}}}
		}, "must be a label selector"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			gs := &sluicev1beta1.GitSync{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "invalid"},
				Spec:       sluicev1beta1.GitSyncSpec{URL: "https://git.example.com/repo.git"},
			}
			tt.mutate(gs)
			err := env.Client.Create(context.Background(), gs)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
			g.Expect(err.Error()).To(ContainSubstring(tt.message))
		})
	}
}
