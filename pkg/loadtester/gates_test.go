package loadtester

import (
	"context"
	"net/http"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestGatesSurviveRestart(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "loadtester")
	g.Expect(err).NotTo(HaveOccurred())
	cs, err := kubernetes.NewForConfig(env.Config)
	g.Expect(err).NotTo(HaveOccurred())

	// First instance: gates start closed, then open one and the rollback flag.
	first, hs1 := newServer(t, Config{Gates: NewConfigMapGates(cs, ns)})
	body := payload("podinfo", "test", nil)
	code, _ := post(t, hs1.URL+"/gate/check", body)
	g.Expect(code).To(Equal(http.StatusForbidden))
	code, _ = post(t, hs1.URL+"/rollback/check", body)
	g.Expect(code).To(Equal(http.StatusForbidden))
	code, _ = operate(t, hs1.URL+"/gate/open", body)
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, _ = operate(t, hs1.URL+"/gate/open", body) // idempotent
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, _ = operate(t, hs1.URL+"/rollback/open", body)
	g.Expect(code).To(Equal(http.StatusAccepted))
	hs1.Close()
	first.Close()

	cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + managedByValue})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cms.Items).To(HaveLen(2))

	// Second instance, fresh client: the state is read from the API server.
	cs2, err := kubernetes.NewForConfig(env.Config)
	g.Expect(err).NotTo(HaveOccurred())
	_, hs2 := newServer(t, Config{Gates: NewConfigMapGates(cs2, ns)})
	code, out := post(t, hs2.URL+"/gate/check", body)
	g.Expect(code).To(Equal(http.StatusOK), "%v", out)
	code, _ = post(t, hs2.URL+"/rollback/check", body)
	g.Expect(code).To(Equal(http.StatusOK))
	// Another canary's gate is still closed.
	code, _ = post(t, hs2.URL+"/gate/check", payload("other", "test", nil))
	g.Expect(code).To(Equal(http.StatusForbidden))

	code, _ = operate(t, hs2.URL+"/gate/close", body)
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, _ = operate(t, hs2.URL+"/gate/close", body) // idempotent
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, _ = post(t, hs2.URL+"/gate/check", body)
	g.Expect(code).To(Equal(http.StatusForbidden))
	code, _ = operate(t, hs2.URL+"/rollback/close", body)
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, _ = post(t, hs2.URL+"/rollback/check", body)
	g.Expect(code).To(Equal(http.StatusForbidden))
	cms, err = cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + managedByValue})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cms.Items).To(BeEmpty())
}

func TestMemoryGates(t *testing.T) {
	g := NewWithT(t)
	_, hs := newServer(t, Config{})
	body := payload("podinfo", "test", nil)
	code, _ := operate(t, hs.URL+"/gate/open", body)
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, _ = post(t, hs.URL+"/gate/check", body)
	g.Expect(code).To(Equal(http.StatusOK))
	code, _ = post(t, hs.URL+"/rollback/check", body)
	g.Expect(code).To(Equal(http.StatusForbidden), "the rollback flag is separate")
	code, _ = operate(t, hs.URL+"/gate/close", body)
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, _ = post(t, hs.URL+"/gate/check", body)
	g.Expect(code).To(Equal(http.StatusForbidden))
}
