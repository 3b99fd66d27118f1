package gitsync_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/revision"
)

// busyClient changes the object for real (as kube-controller-manager does
// with a rolling Deployment's status, or the engine scaling its target)
// between GitSync's read and each of its first applies: those applies
// carry a resourceVersion the API server no longer has and conflict.
type busyClient struct {
	client.Client
	target    client.ObjectKey
	conflicts int32
	applies   atomic.Int32
}

func (c *busyClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	if n := c.applies.Add(1); n <= c.conflicts {
		patch := fmt.Sprintf(`{"metadata":{"labels":{"example.com/busy":"%d"}}}`, n)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: c.target.Namespace, Name: c.target.Name}}
		if err := c.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			return err
		}
	}
	return c.Client.Apply(ctx, obj, opts...)
}

// TestGitSync_SourceAnnotationsOutlastABusyObject: a Deployment that
// changes again and again for a while after GitSync applied it (its new
// ReplicaSet rolling out, the engine scaling it up for a release) still
// gets its source annotations: a revision whose annotation gave up is never
// annotated again (the next sync finds the Deployment unchanged), and its
// release would never learn its commit. Eight conflicting applies in a row
// are more than the five attempts 10 ms apart that once gave up.
func TestGitSync_SourceAnnotationsOutlastABusyObject(t *testing.T) {
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
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "ghcr.io/example/web:2.0.0"}}},
			},
		},
	}
	g.Expect(env.Client.Create(ctx, d)).To(Succeed())
	cs := ssa.NewChangeSet()
	cs.Add(ssa.ChangeSetEntry{ObjMetadata: object.ObjMetadata{GroupKind: schema.GroupKind{Group: "apps", Kind: "Deployment"}, Namespace: ns, Name: "web"},
		Action: ssa.ConfiguredAction})
	busy := &busyClient{Client: env.Client, target: client.ObjectKeyFromObject(d), conflicts: 8}
	a := &gitsync.Applier{Client: busy}

	n, err := a.AnnotateSources(ctx, cs, gitsync.Source{Revision: "main@sha1:dddd", CommitTime: time.Now().Add(-time.Minute), AppliedTime: time.Now()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(1))
	g.Expect(busy.applies.Load()).To(BeNumerically(">", busy.conflicts), "the busy object was never changed under an apply")
	live := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(d), live)).To(Succeed())
	g.Expect(live.Labels).To(HaveKeyWithValue("example.com/busy", "8"))
	g.Expect(live.Annotations).To(HaveKeyWithValue(sluicev1beta1.GitSyncRevisionAnnotation, "main@sha1:dddd"))
	g.Expect(live.Annotations).To(HaveKeyWithValue(sluicev1beta1.GitSyncContentHashAnnotation, revision.TemplateHash(&d.Spec.Template)))
}
