package notify

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// TestDispatcher_RealAPIServer delivers through an AlertProvider and a
// Secret stored in a real API server (CRD validation included), and checks
// that a wrong Secret gives an error without the credentials.
func TestDispatcher_RealAPIServer(t *testing.T) {
	g := NewWithT(t)
	env, err := testenv.Start(testScheme())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := env.Namespace(ctx, "notify")
	g.Expect(err).NotTo(HaveOccurred())

	rec := &receiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	const token = "bearer-7c1e9d"
	g.Expect(env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: ns},
		StringData: map[string]string{SecretKeyAddress: srv.URL + "/secret-path", SecretKeyToken: token},
	})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "generic", Namespace: ns},
		Spec:       sluicev1beta1.AlertProviderSpec{Type: TypeGeneric, SecretRef: &corev1.LocalObjectReference{Name: "hook"}},
	})).To(Succeed())

	// The providers' errors are checked through New directly.
	var p sluicev1beta1.AlertProvider
	g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "generic"}, &p)).To(Succeed())
	p.Spec.SecretRef.Name = "absent"
	_, err = New(ctx, env.Client, &p)
	g.Expect(err).To(MatchError(ContainSubstring("failed to read Secret " + ns + "/absent")))
	g.Expect(err.Error()).NotTo(ContainSubstring(token))

	d, err := NewDispatcher(DispatcherOptions{Reader: env.Client, SecretReader: env.Client, Registerer: prometheus.NewRegistry(), Backoff: 10 * time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())
	c := canaryWithAlerts(alert("ops", SeverityWarn, "generic"))
	c.Namespace = ns
	d.Dispatch(c, failedRelease())
	g.Expect(d.Stop(ctx)).To(Succeed())
	g.Expect(counterValue(d.delivered)).To(Equal(1.0))
	g.Expect(rec.paths).To(Equal([]string{"/secret-path"}))
	g.Expect(rec.auth).To(Equal([]string{"Bearer " + token}))
	g.Expect(strings.Contains(string(rec.last()), `"canary":"podinfo"`)).To(BeTrue())
}
