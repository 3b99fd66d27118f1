package canary_test

import (
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// ownedByGitSync gives an object the labels GitSync's applies set.
func (f *fixture) ownedByGitSync(o metav1.Object) {
	l := o.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[sluicev1beta1.GitSyncNameLabel] = "app"
	l[sluicev1beta1.GitSyncNamespaceLabel] = f.ns
	o.SetLabels(l)
}

// gitSyncApplied writes the source annotations as GitSync does after an
// apply that changed the object (its own code, on the API server).
func (f *fixture) gitSyncApplied(gk schema.GroupKind, name, revision string, commit time.Time) {
	f.t.Helper()
	cs := ssa.NewChangeSet()
	cs.Add(ssa.ChangeSetEntry{ObjMetadata: object.ObjMetadata{GroupKind: gk, Namespace: f.ns, Name: name}, Action: ssa.ConfiguredAction})
	n, err := (&gitsync.Applier{Client: env.Client}).AnnotateSources(f.ctx, cs, gitsync.Source{Revision: revision, CommitTime: commit, AppliedTime: time.Now()})
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(n).To(Equal(1))
}

// source reads a Canary's status.source and status.revision.
func (f *fixture) source(name string) func() (*sluicev1beta1.ReleaseSource, string) {
	return func() (*sluicev1beta1.ReleaseSource, string) {
		c := &sluicev1beta1.Canary{}
		if err := f.get(c, name); err != nil {
			return nil, err.Error()
		}
		return c.Status.Source, c.Status.Revision
	}
}

// waitSource waits until the Canary's release records the revision.
func (f *fixture) waitSource(name, revision string, commit time.Time) {
	f.t.Helper()
	f.g.Eventually(func(g Gomega) {
		src, release := f.source(name)()
		g.Expect(src).NotTo(BeNil())
		g.Expect(src.Revision).To(Equal(revision))
		g.Expect(src.Release).To(Equal(release))
		g.Expect(src.GitSyncName).To(Equal("app"))
		g.Expect(src.GitSyncNamespace).To(Equal(f.ns))
		g.Expect(src.CommitTime).NotTo(BeNil())
		g.Expect(src.CommitTime.Time).To(BeTemporally("==", commit))
		g.Expect(src.AppliedTime).NotTo(BeNil())
	}).Should(Succeed(), func() string { return f.describe(name) })
}

var deploymentKind = schema.GroupKind{Group: "apps", Kind: "Deployment"}

// TestCanary_SourceFromTarget: a release records the commit whose
// annotations describe the template it brought; annotations of an older
// template are ignored; the next release replaces the source.
func TestCanary_SourceFromTarget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	f.deployment("src", "1.0", 1, func(d *appsv1.Deployment) { f.ownedByGitSync(d) })
	f.canary("src", "src")
	f.waitPhase("src", sluicev1beta1.CanaryPhaseInitialized)

	// The promoted template's commit is not the source of a release of
	// another template (changed by hand here).
	f.gitSyncApplied(deploymentKind, "src", "main@sha1:aaaa", t0)
	f.setImage("src", "2.0")
	f.waitPhase("src", sluicev1beta1.CanaryPhaseProgressing)
	c := f.waitPhase("src", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(c.Status.Source).To(BeNil())

	// A commit changes the image: its release names it.
	f.setImage("src", "3.0")
	f.gitSyncApplied(deploymentKind, "src", "main@sha1:bbbb", t0.Add(time.Minute))
	f.waitSource("src", "main@sha1:bbbb", t0.Add(time.Minute))

	// The next commit's release replaces it.
	f.setImage("src", "4.0")
	f.gitSyncApplied(deploymentKind, "src", "main@sha1:cccc", t0.Add(2*time.Minute))
	f.waitSource("src", "main@sha1:cccc", t0.Add(2*time.Minute))
	c = f.waitPhase("src", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(c.Status.Source.Revision).To(Equal("main@sha1:cccc"), "the source outlives the promotion")
	f.g.Expect(c.Status.Source.Release).To(Equal(c.Status.Revision))
}

// TestCanary_SourceFromConfig: a release started by a change of a tracked
// ConfigMap takes the ConfigMap's source, not the target's older one.
func TestCanary_SourceFromConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	settings := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: f.ns}, Data: map[string]string{"level": "info"}}
	f.ownedByGitSync(settings)
	f.g.Expect(env.Client.Create(f.ctx, settings)).To(Succeed())
	f.deployment("cfgsrc", "1.0", 1, func(d *appsv1.Deployment) {
		f.ownedByGitSync(d)
		d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
	})
	f.gitSyncApplied(deploymentKind, "cfgsrc", "main@sha1:aaaa", t0)
	f.gitSyncApplied(schema.GroupKind{Kind: "ConfigMap"}, "settings", "main@sha1:aaaa", t0)
	f.canary("cfgsrc", "cfgsrc")
	c := f.waitPhase("cfgsrc", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Expect(c.Status.Source).To(BeNil(), "initialization is no release")

	f.update(settings, "settings", func() { settings.Data["level"] = "debug" })
	f.gitSyncApplied(schema.GroupKind{Kind: "ConfigMap"}, "settings", "main@sha1:kkkk", t0.Add(time.Minute))
	f.waitSource("cfgsrc", "main@sha1:kkkk", t0.Add(time.Minute))
	f.waitPhase("cfgsrc", sluicev1beta1.CanaryPhaseSucceeded)
}
