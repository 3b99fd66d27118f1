package gitsync

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync/helm"
)

func job(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": map[string]any{"name": name}}}
}

// TestDeleteHooksStored: only the delete hooks are kept with the release;
// they come back as they were, and a Secret whose hooks were changed (or
// planted) by someone else is refused rather than run.
func TestDeleteHooksStored(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	scheme := runtime.NewScheme()
	g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	r := &GitSyncReconciler{Client: c, APIReader: c}
	gs := &sluicev1beta1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", UID: "uid-1"}}

	hooks := []helm.Hook{
		{Object: job("migrate"), Path: "web/templates/m.yaml", Events: []string{helm.EventPreUpgrade}, DeletePolicies: []string{helm.PolicyBeforeHookCreation}},
		{Object: job("cleanup"), Path: "web/templates/c.yaml", Events: []string{helm.EventPreDelete}, Weight: -2, DeletePolicies: []string{helm.PolicySucceeded}},
		{Object: job("notify"), Path: "web/templates/n.yaml", Events: []string{helm.EventPostDelete, helm.EventPostInstall}, DeletePolicies: []string{helm.PolicyBeforeHookCreation}},
	}
	none, digest, err := encodeDeleteHooks(hooks[:1])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(none).To(BeEmpty())
	g.Expect(digest).To(BeEmpty(), "a release without delete hooks records no digest")

	data, digest, err := encodeDeleteHooks(hooks)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(digest).To(HavePrefix("sha256:"))
	g.Expect(r.storeRelease(ctx, gs, 1, nil, data)).To(Succeed())
	entry := sluicev1beta1.GitSyncHelmRelease{Revision: 1, DeleteHooksDigest: digest}
	got, err := r.loadDeleteHooks(ctx, gs, entry)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal(hooks[1:]))

	// Someone replaces the hooks in the Secret with their own Job.
	evil, _, err := encodeDeleteHooks([]helm.Hook{{Object: job("evil"), Events: []string{helm.EventPreDelete}}})
	g.Expect(err).NotTo(HaveOccurred())
	s := &corev1.Secret{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "sluice-helm-web-v1"}, s)).To(Succeed())
	s.Data[deleteHooksKey] = evil
	g.Expect(c.Update(ctx, s)).To(Succeed())
	_, err = r.loadDeleteHooks(ctx, gs, entry)
	g.Expect(err).To(MatchError(ContainSubstring("not the " + digest + " recorded in status")))

	// A release recorded without delete hooks reads nothing.
	got, err = r.loadDeleteHooks(ctx, gs, sluicev1beta1.GitSyncHelmRelease{Revision: 1})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(BeEmpty())
}
