package canary_test

import (
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

const pausedReplicas = "autoscaling.keda.sh/paused-replicas"

// The suite's API server starts without KEDA, so that a Canary naming a
// ScaledObject can be seen stalled; the first test that needs KEDA
// installs its CRD, once.
var installKEDA = sync.OnceValue(func() error { return env.InstallKEDACRDs() })

// scaledObject is a KEDA ScaledObject for the Deployment target, with two
// Prometheus triggers: "rps" (named in primaryScalerQueries by the tests)
// and "latency".
func (f *fixture) scaledObject(name, target string) *unstructured.Unstructured {
	so := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": name, "namespace": f.ns},
		"spec": map[string]any{
			"scaleTargetRef":  map[string]any{"name": target},
			"minReplicaCount": int64(1), "maxReplicaCount": int64(5),
			"advanced": map[string]any{"horizontalPodAutoscalerConfig": map[string]any{"name": name + "-hpa"}},
			"triggers": []any{
				map[string]any{"type": "prometheus", "name": "rps", "metadata": map[string]any{
					"serverAddress": "http://prometheus:9090", "threshold": "10",
					"query": `sum(rate(http_requests_total{app="` + target + `"}[1m]))`,
				}},
				map[string]any{"type": "prometheus", "name": "latency", "metadata": map[string]any{
					"serverAddress": "http://prometheus:9090", "threshold": "0.5",
					"query": `histogram_quantile(0.99, rate(latency_bucket{app="` + target + `"}[1m]))`,
				}},
			},
		},
	}}
	f.g.Expect(env.Client.Create(f.ctx, so)).To(Succeed())
	return so
}

func (f *fixture) getScaledObject(name string) (*unstructured.Unstructured, error) {
	so := &unstructured.Unstructured{}
	so.SetAPIVersion("keda.sh/v1alpha1")
	so.SetKind("ScaledObject")
	return so, f.get(so, name)
}

// pausedOf reads a ScaledObject's paused-replicas annotation, "" if absent.
func (f *fixture) pausedOf(name string) func() (string, error) {
	return func() (string, error) {
		so, err := f.getScaledObject(name)
		return so.GetAnnotations()[pausedReplicas], err
	}
}

func nested(so *unstructured.Unstructured, fields ...string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(so.Object, fields...)
	return v
}

func triggerMetadata(so *unstructured.Unstructured, i int) map[string]any {
	return nested(so, "spec", "triggers").([]any)[i].(map[string]any)["metadata"].(map[string]any)
}

func kedaCanary(c *sluicev1beta1.Canary) {
	c.Spec.AutoscalerRef = &sluicev1beta1.AutoscalerReference{
		APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject", Name: c.Spec.TargetRef.Name,
		PrimaryScalerQueries:  map[string]string{"rps": `sum(rate(http_requests_total{app="primary"}[1m]))`},
		PrimaryScalerReplicas: &sluicev1beta1.ScalerReplicas{MinReplicas: ptr.To[int32](2), MaxReplicas: ptr.To[int32](6)},
	}
}

// Given a cluster without KEDA, a Canary naming a ScaledObject is Stalled
// (AutoscalerCRDNotInstalled) with what to do; once KEDA's CRD is there it
// is Stalled on the missing ScaledObject, and once that exists it
// initializes. Not parallel: it must run before any test installs KEDA.
func TestCanary_ScaledObjectWithoutKEDA(t *testing.T) {
	f := newFixture(t)
	f.deployment("nokeda", "1.0", 1)
	f.canary("nokeda", "nokeda", kedaCanary)
	stalled := func() string {
		cond := f.condition("nokeda", sluicev1beta1.StalledCondition)
		if cond == nil {
			return ""
		}
		return cond.Reason + ": " + cond.Message
	}
	f.g.Eventually(stalled).Should(Equal("AutoscalerCRDNotInstalled: autoscalerRef ScaledObject nokeda needs KEDA's ScaledObject CRD (keda.sh/v1alpha1), " +
		"which is not installed in the cluster: install KEDA or use a HorizontalPodAutoscaler"))
	f.g.Expect(f.get(&sluicev1beta1.Canary{}, "nokeda")).To(Succeed())
	f.g.Expect(apierrors.IsNotFound(f.get(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment"}}, "nokeda-primary"))).
		To(BeTrue(), "a stalled Canary takes nothing over")

	// KEDA is installed: the engine finds the kind without a restart.
	f.g.Expect(installKEDA()).To(Succeed())
	f.annotate("nokeda", "test.sluice.dev/poke", "1")
	f.g.Eventually(stalled).Should(Equal("AutoscalerNotFound: ScaledObject nokeda not found in namespace " + f.ns))

	f.scaledObject("nokeda", "nokeda")
	f.annotate("nokeda", "test.sluice.dev/poke", "2")
	f.waitPhase("nokeda", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Expect(f.condition("nokeda", sluicev1beta1.StalledCondition)).To(BeNil())
	_, err := f.getScaledObject("nokeda-primary")
	f.g.Expect(err).NotTo(HaveOccurred())
}

// Given a target scaled by a KEDA ScaledObject, the primary gets
// <so>-primary (scaling the primary, the named trigger's query replaced,
// min/max overridden), the target's ScaledObject is paused at zero while
// the target is, resumed during the release, and a change to the target's
// ScaledObject reaches the primary's with the promotion.
func TestCanary_ScaledObject(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.g.Expect(installKEDA()).To(Succeed())
	f.deployment("kd", "1.0", 2)
	f.scaledObject("kd", "kd")
	f.canary("kd", "kd", kedaCanary, func(c *sluicev1beta1.Canary) { c.Spec.Analysis.Iterations = 1000 })
	c := f.waitPhase("kd", sluicev1beta1.CanaryPhaseInitialized)

	primary, err := f.getScaledObject("kd-primary")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(nested(primary, "spec", "scaleTargetRef", "name")).To(Equal("kd-primary"))
	f.g.Expect(nested(primary, "spec", "minReplicaCount")).To(BeEquivalentTo(2))
	f.g.Expect(nested(primary, "spec", "maxReplicaCount")).To(BeEquivalentTo(6))
	f.g.Expect(nested(primary, "spec", "advanced", "horizontalPodAutoscalerConfig", "name")).To(Equal("kd-hpa-primary"))
	f.g.Expect(triggerMetadata(primary, 0)).To(HaveKeyWithValue("query", `sum(rate(http_requests_total{app="primary"}[1m]))`))
	f.g.Expect(triggerMetadata(primary, 1)).To(HaveKeyWithValue("query", `histogram_quantile(0.99, rate(latency_bucket{app="kd"}[1m]))`),
		"a trigger primaryScalerQueries does not name keeps its query")
	f.g.Expect(primary.GetAnnotations()).NotTo(HaveKey(pausedReplicas))
	f.g.Expect(metav1.IsControlledBy(primary, c)).To(BeTrue())
	// The user's ScaledObject keeps its own target and bounds.
	src, err := f.getScaledObject("kd")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(nested(src, "spec", "scaleTargetRef", "name")).To(Equal("kd"))
	f.g.Expect(nested(src, "spec", "maxReplicaCount")).To(BeEquivalentTo(5))

	// The target is scaled to zero and its ScaledObject paused there.
	f.g.Eventually(f.replicas("kd")).Should(Equal(int32(0)))
	f.g.Eventually(f.pausedOf("kd")).Should(Equal("0"))

	// A change to the user's ScaledObject waits for the release.
	f.update(src, "kd", func() { triggerMetadata(src, 1)["threshold"] = "0.8" })
	f.g.Consistently(func() (any, error) {
		p, err := f.getScaledObject("kd-primary")
		return triggerMetadata(p, 1)["threshold"], err
	}, 2*time.Second, 200*time.Millisecond).Should(Equal("0.5"))

	// A release scales the target up: KEDA scales it again.
	f.setImage("kd", "2.0")
	f.waitPhase("kd", sluicev1beta1.CanaryPhaseProgressing)
	f.g.Eventually(f.pausedOf("kd")).Should(BeEmpty())
	f.g.Eventually(f.replicas("kd")).Should(BeNumerically(">", 0))

	f.annotate("kd", sluicev1beta1.PromoteAnnotation, "1")
	f.waitPhase("kd", sluicev1beta1.CanaryPhaseSucceeded)
	primary, err = f.getScaledObject("kd-primary")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(triggerMetadata(primary, 1)).To(HaveKeyWithValue("threshold", "0.8"))
	f.g.Expect(nested(primary, "spec", "maxReplicaCount")).To(BeEquivalentTo(6))
	f.g.Expect(triggerMetadata(primary, 0)).To(HaveKeyWithValue("query", `sum(rate(http_requests_total{app="primary"}[1m]))`))
	f.g.Eventually(f.pausedOf("kd")).Should(Equal("0"))
	f.g.Eventually(f.replicas("kd")).Should(Equal(int32(0)))

	// Deleting the Canary gives the target back to KEDA (resumed, as
	// Flagger's finalizer does) and the primary's ScaledObject goes with it.
	f.g.Expect(env.Client.Delete(f.ctx, c)).To(Succeed())
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&sluicev1beta1.Canary{}, "kd")) }).Should(BeTrue())
	f.g.Expect(f.pausedOf("kd")()).To(BeEmpty())
	f.g.Eventually(func() bool {
		_, err := f.getScaledObject("kd-primary")
		return apierrors.IsNotFound(err)
	}).Should(BeTrue())
}
