package gitsync_test

import (
	"context"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/revision"
)

// TestGitSync_SourceAnnotationsAfterACrash: a manager killed between the
// apply of a revision and its annotations leaves a workload with the new
// content and no source; the next sync of that revision finds the
// workload unchanged. For a revision new to the GitSync (src.Unchanged)
// the unchanged workload is annotated then, once; otherwise (a sync of a
// revision already recorded) it is left alone, and content an annotation
// already attributes keeps its commit.
func TestGitSync_SourceAnnotationsAfterACrash(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "ghcr.io/example/web:1.1.0"}}},
			},
		},
	}
	g.Expect(env.Client.Create(ctx, d)).To(Succeed())
	cs := ssa.NewChangeSet()
	cs.Add(ssa.ChangeSetEntry{ObjMetadata: object.ObjMetadata{GroupKind: schema.GroupKind{Group: "apps", Kind: "Deployment"}, Namespace: ns, Name: "web"},
		Action: ssa.UnchangedAction})
	a := &gitsync.Applier{Client: env.Client}
	commit := time.Date(2026, 12, 7, 4, 49, 41, 0, time.UTC)
	annotations := func(g Gomega) map[string]string {
		live := &appsv1.Deployment{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(d), live)).To(Succeed())
		return live.Annotations
	}

	// A sync of a revision already recorded: the unchanged workload is not annotated.
	n, err := a.AnnotateSources(ctx, cs, gitsync.Source{Revision: "main@sha1:aaaa", CommitTime: commit, AppliedTime: time.Now()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(BeZero())
	g.Expect(annotations(g)).NotTo(HaveKey(sluicev1beta1.GitSyncRevisionAnnotation))

	// The first sync of a new revision after the crash annotates it.
	n, err = a.AnnotateSources(ctx, cs, gitsync.Source{Revision: "main@sha1:bbbb", CommitTime: commit, AppliedTime: time.Now(), Unchanged: true})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(1))
	got := annotations(g)
	g.Expect(got).To(HaveKeyWithValue(sluicev1beta1.GitSyncRevisionAnnotation, "main@sha1:bbbb"))
	g.Expect(got).To(HaveKeyWithValue(sluicev1beta1.GitSyncContentHashAnnotation, revision.TemplateHash(&d.Spec.Template)))

	// A later new revision that did not change the content keeps the commit that brought it.
	n, err = a.AnnotateSources(ctx, cs, gitsync.Source{Revision: "main@sha1:cccc", CommitTime: commit, AppliedTime: time.Now(), Unchanged: true})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(BeZero())
	g.Expect(annotations(g)).To(HaveKeyWithValue(sluicev1beta1.GitSyncRevisionAnnotation, "main@sha1:bbbb"))
}
