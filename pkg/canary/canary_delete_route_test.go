package canary_test

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Given a Canary on the Gateway API router deleted in the middle of a
// release (traffic split 50/50, no revertOnDeletion), the HTTPRoute Sluice
// created outlives it: it is released from the Canary's ownership and sends
// every request to the apex Service, which points at the target again, while
// the primary and the generated Services are garbage-collected. Traffic
// through the gateway never loses its route.
func TestCanary_DeletionKeepsTheGatewayAPIRoute(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// A closed confirm-promotion gate holds the release at 50% while the
	// Canary is deleted.
	f.hooks.set("/promotion-gate", http.StatusForbidden)
	f.deployment("gwdel", "1.0", 1)
	c := f.canary("gwdel", "gwdel", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = sluicev1beta1.ProviderGatewayAPI
		c.Spec.Service.Hosts = []string{"gwdel.example.com"}
		c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: "public"}}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}, Threshold: 1, StepWeight: 50, MaxWeight: 50,
			Webhooks: []sluicev1beta1.CanaryWebhook{hook("promotion-gate", sluicev1beta1.WebhookConfirmPromotion, f.hooks.url("/promotion-gate"))}}
	})
	f.waitPhase("gwdel", sluicev1beta1.CanaryPhaseInitialized)
	backends := func() (string, error) {
		r := &gatewayv1.HTTPRoute{}
		if err := f.get(r, "gwdel"); err != nil {
			return "", err
		}
		var out []string
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				w := int32(1)
				if b.Weight != nil {
					w = *b.Weight
				}
				out = append(out, string(b.Name)+"="+strconv.Itoa(int(w)))
			}
			for _, fl := range rule.Filters {
				if fl.RequestMirror != nil {
					out = append(out, "mirror:"+string(fl.RequestMirror.BackendRef.Name))
				}
			}
		}
		sort.Strings(out)
		return strings.Join(out, ","), nil
	}
	owners := func() ([]metav1.OwnerReference, error) {
		r := &gatewayv1.HTTPRoute{}
		err := f.get(r, "gwdel")
		return r.OwnerReferences, err
	}
	f.g.Expect(owners()).To(ContainElement(HaveField("UID", c.UID)), "the HTTPRoute Sluice created is owned by the Canary")
	f.setImage("gwdel", "2.0")
	f.waitPhase("gwdel", sluicev1beta1.CanaryPhaseWaitingPromotion)
	f.g.Expect(backends()).To(Equal("gwdel-canary=50,gwdel-primary=50"))

	f.g.Expect(env.Client.Delete(f.ctx, c)).To(Succeed())
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&sluicev1beta1.Canary{}, "gwdel")) }).Should(BeTrue())

	// The route now sends everything to the apex, which serves the target.
	f.g.Expect(backends()).To(Equal("gwdel=100"))
	f.g.Expect(owners()).To(BeEmpty())
	apex := &corev1.Service{}
	f.g.Expect(f.get(apex, "gwdel")).To(Succeed())
	f.g.Expect(apex.Spec.Selector).To(Equal(map[string]string{"app": "gwdel"}))
	// The garbage collector removes what only the Canary needed, not the route.
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&corev1.Service{}, "gwdel-primary")) }).Should(BeTrue())
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&corev1.Service{}, "gwdel-canary")) }).Should(BeTrue())
	f.g.Consistently(backends, 2*time.Second, 200*time.Millisecond).Should(Equal("gwdel=100"))
}
