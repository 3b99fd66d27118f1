package testenv_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-cd/sluice/pkg/testenv"
)

// TestRestartAPIServer_ClientsKeepWorking stops kube-apiserver and starts it
// again: while it is down the client is refused; once it is back, the same
// client (same URL, CA and credentials) reads what was written before from
// the same etcd, and writes again. Stop stops the new process too.
func TestRestartAPIServer_ClientsKeepWorking(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	scheme := runtime.NewScheme()
	g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	env, err := testenv.Start(scheme)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() {
		g.Expect(env.Stop()).To(Succeed())
		pids, err := testenv.ChildrenNamed("kube-apiserver", "etcd")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pids).To(BeEmpty(), "processes left running after Stop")
	}()

	// Given a ConfigMap written through the API server
	ns, err := env.Namespace(ctx, "restart")
	g.Expect(err).NotTo(HaveOccurred())
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "before"}, Data: map[string]string{"k": "v"}}
	g.Expect(env.Client.Create(ctx, cm)).To(Succeed())
	before, err := testenv.ChildrenNamed("kube-apiserver")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(before).To(HaveLen(1))

	// When the API server is stopped
	_, err = env.StopAPIServer(ctx, 30*time.Second)
	g.Expect(err).NotTo(HaveOccurred())
	// Then it is gone, and clients are refused
	pids, err := testenv.ChildrenNamed("kube-apiserver")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pids).To(BeEmpty())
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{})).NotTo(Succeed())
	_, err = env.StopAPIServer(ctx, 30*time.Second)
	g.Expect(err).To(HaveOccurred(), "stopping twice")

	// When it is started again
	g.Expect(env.StartAPIServer(ctx, t.TempDir()+"/kube-apiserver.log")).To(Succeed())
	// Then it is a new process, and the same client reads the ConfigMap
	// from etcd and writes again
	after, err := testenv.ChildrenNamed("kube-apiserver")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(after).To(HaveLen(1))
	g.Expect(after).NotTo(Equal(before))
	got := &corev1.ConfigMap{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(cm), got)).To(Succeed())
	g.Expect(got.Data).To(Equal(map[string]string{"k": "v"}))
	g.Expect(env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "after"}})).To(Succeed())

	// and it can be restarted again
	_, err = env.StopAPIServer(ctx, 30*time.Second)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(env.StartAPIServer(ctx, t.TempDir()+"/kube-apiserver.log")).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "after"}, got)).To(Succeed())
}
