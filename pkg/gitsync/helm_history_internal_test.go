package gitsync

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func rel(rev int32, s sluicev1beta1.GitSyncHelmReleaseStatus) sluicev1beta1.GitSyncHelmRelease {
	return sluicev1beta1.GitSyncHelmRelease{Revision: rev, Status: s, Digest: "sha256:x"}
}

func revisions(h []sluicev1beta1.GitSyncHelmRelease) []int32 {
	var out []int32
	for _, r := range h {
		out = append(out, r.Revision)
	}
	return out
}

func TestTrimHistory(t *testing.T) {
	const (
		d  = sluicev1beta1.GitSyncHelmReleaseDeployed
		f  = sluicev1beta1.GitSyncHelmReleaseFailed
		s  = sluicev1beta1.GitSyncHelmReleaseSuperseded
		rb = sluicev1beta1.GitSyncHelmReleaseRolledBack
	)
	tests := []struct {
		name        string
		history     []sluicev1beta1.GitSyncHelmRelease
		max         int
		keep        int32
		want, drops []int32
	}{
		{name: "under the bound", history: []sluicev1beta1.GitSyncHelmRelease{rel(1, s), rel(2, d)}, max: 5, want: []int32{1, 2}},
		{name: "oldest dropped", history: []sluicev1beta1.GitSyncHelmRelease{rel(1, s), rel(2, s), rel(3, s), rel(4, d)}, max: 2, want: []int32{3, 4}, drops: []int32{1, 2}},
		{name: "the deployed release is kept", history: []sluicev1beta1.GitSyncHelmRelease{rel(1, d), rel(2, rb), rel(3, rb), rel(4, f)}, max: 2, keep: 4, want: []int32{1, 4}, drops: []int32{2, 3}},
		{name: "a bound of one keeps the deployed and the failing", history: []sluicev1beta1.GitSyncHelmRelease{rel(1, d), rel(2, f)}, max: 1, keep: 2, want: []int32{1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, dropped := trimHistory(tc.history, tc.max, tc.keep)
			g.Expect(revisions(got)).To(Equal(tc.want))
			g.Expect(dropped).To(Equal(tc.drops))
		})
	}
}

func TestReleaseSecretName(t *testing.T) {
	g := NewWithT(t)
	g.Expect(releaseSecretName("web", 3)).To(Equal("sluice-helm-web-v3"))
	long := strings.Repeat("a", 250)
	n := releaseSecretName(long, 12)
	g.Expect(len(n)).To(BeNumerically("<=", 253))
	g.Expect(n).To(HaveSuffix("-v12"))
	g.Expect(n).NotTo(Equal(releaseSecretName(strings.Repeat("a", 249)+"b", 12)), "the hash tells long names apart")
}

// TestLoadRelease: a stored release comes back as it was; a Secret whose
// objects do not hash to the digest of status, or that the GitSync does
// not own, is refused rather than applied.
func TestLoadRelease(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	scheme := runtime.NewScheme()
	g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	g.Expect(sluicev1beta1.AddToScheme(scheme)).To(Succeed())
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	r := &GitSyncReconciler{Client: c, APIReader: c}
	gs := &sluicev1beta1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", UID: "uid-1"}}
	objs := []*unstructured.Unstructured{{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "settings"}, "data": map[string]any{"password": "from-a-secret"}}}}
	digest, err := Digest(objs)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.storeRelease(ctx, gs, 1, objs, nil)).To(Succeed())
	g.Expect(r.storeRelease(ctx, gs, 1, objs, nil)).To(Succeed(), "storing again (a lost status write) replaces it")

	s := &corev1.Secret{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "sluice-helm-web-v1"}, s)).To(Succeed())
	g.Expect(s.Labels).To(HaveKeyWithValue(HelmHistoryLabel, "web"))
	g.Expect(string(s.Data[helmReleaseKey])).NotTo(ContainSubstring("from-a-secret"), "compressed")

	entry := sluicev1beta1.GitSyncHelmRelease{Revision: 1, Digest: digest, Status: sluicev1beta1.GitSyncHelmReleaseDeployed, Time: metav1.NewTime(time.Now())}
	got, err := r.loadRelease(ctx, gs, entry)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal(objs))

	entry.Digest = "sha256:other"
	_, err = r.loadRelease(ctx, gs, entry)
	g.Expect(err).To(MatchError(ContainSubstring("secret sluice-helm-web-v1 holds objects of digest " + digest + ", not the sha256:other of revision 1")))

	other := gs.DeepCopy()
	other.UID = "uid-2"
	_, err = r.loadRelease(ctx, other, entry)
	g.Expect(err).To(MatchError(ContainSubstring("not owned by this GitSync")))

	g.Expect(r.deleteReleases(ctx, gs, []int32{1, 2})).To(Succeed(), "a missing Secret is already deleted")
	_, err = r.loadRelease(ctx, gs, entry)
	g.Expect(err).To(MatchError(ContainSubstring("not found")))
}
