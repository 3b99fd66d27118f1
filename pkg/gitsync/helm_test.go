package gitsync_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// infraChart renders a ConfigMap of its values, the Deployment web (a
// Canary's target in the tests) and a Gadget of the CRD in its crds/.
func infraChart(version string) testenv.Chart {
	return testenv.Chart{
		Name: "infra", Version: version,
		Values: map[string]any{"greeting": "hello", "image": map[string]any{"tag": "1.0.0"}, "replicaCount": 3, "auth": map[string]any{}},
		Files: map[string]string{
			"templates/settings.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-settings}
data:
  greeting: {{ .Values.greeting | quote }}
  password: {{ .Values.auth.password | default "" | sha256sum | quote }}
  chart: {{ .Chart.Version | quote }}
`,
			"templates/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: {{ .Values.replicaCount }}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: "ghcr.io/example/web:{{ .Values.image.tag }}"}]}
`,
			"templates/gadget.yaml": `apiVersion: example.com/v1
kind: Gadget
metadata: {name: {{ .Release.Name }}}
spec: {size: 1}
`,
			"crds/gadgets.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  names: {kind: Gadget, plural: gadgets, singular: gadget}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
`,
		},
	}
}

func apiChart(version string) testenv.Chart {
	return testenv.Chart{
		Name: "api", Version: version,
		Values: map[string]any{"message": "default"},
		Files: map[string]string{"templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: api-config}
data: {message: {{ .Values.message | quote }}, chart: {{ .Chart.Version | quote }}}
`},
	}
}

func helmValues(g Gomega, doc string) *apiextensionsv1.JSON {
	j, err := yaml.YAMLToJSON([]byte(doc))
	g.Expect(err).NotTo(HaveOccurred())
	return &apiextensionsv1.JSON{Raw: j}
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func readyTrue(g Gomega, ns, name string) {
	c := ready(g, ns, name)
	g.Expect(c).NotTo(BeNil())
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
}

// TestGitSync_HelmAcceptance is issue 23's acceptance: an infrastructure
// layer of two charts (an HTTP repository's and an OCI registry's) with
// values from a ConfigMap and a Secret; a values change upgrades; a broken
// version applies nothing and prunes nothing; a Canary's target keeps the
// engine's replicas.
func TestGitSync_HelmAcceptance(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)

	charts, err := testenv.StartHelmRepo(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(charts.Close)
	broken := infraChart("1.1.0")
	broken.Files["templates/broken.yaml"] = "{{ .Values.missing.deeper }}"
	g.Expect(charts.Add(infraChart("1.0.0"), broken, infraChart("2.0.0"))).To(Succeed())
	reg := testenv.StartOCIRegistry()
	t.Cleanup(reg.Close)
	apiRef, err := reg.Push("charts", apiChart("0.1.0"))
	g.Expect(err).NotTo(HaveOccurred())

	fleet := newGitServer(t, "", "").newRepo(t, "fleet")
	fleet.write("initial", map[string]string{"README.md": "infrastructure"})

	g.Expect(env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "infra-values"},
		Data: map[string]string{"values.yaml": "greeting: hi\nimage: {tag: 1.0.0}\n"}})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "infra-auth"},
		Data: map[string][]byte{"password": []byte("s3cr3t,with=comma")}})).To(Succeed())
	canary := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(`
apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: web}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 9898}
  analysis: {interval: 1m, threshold: 5, maxWeight: 50, stepWeight: 10}
`), &canary.Object)).To(Succeed())
	canary.SetNamespace(ns)
	g.Expect(env.Client.Create(ctx, canary)).To(Succeed())

	newGitSync(t, ns, "infra", fleet.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Helm = &sluicev1beta1.GitSyncHelm{
			Chart: sluicev1beta1.GitSyncHelmChart{
				Repository: &sluicev1beta1.GitSyncHelmRepository{URL: charts.URL, Name: "infra"},
				Version:    "1.0.0",
			},
			ValuesFrom: []sluicev1beta1.GitSyncHelmValuesReference{
				{Kind: "ConfigMap", Name: "infra-values"},
				{Kind: "Secret", Name: "infra-auth", ValuesKey: "password", TargetPath: "auth.password"},
			},
		}
	})
	newGitSync(t, ns, "api", fleet.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Helm = &sluicev1beta1.GitSyncHelm{
			Chart:  sluicev1beta1.GitSyncHelmChart{OCI: apiRef, Version: "0.x"},
			Values: helmValues(g, "message: from the GitSync"),
		}
	})

	// Both releases installed, with their values.
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "infra")
		readyTrue(g, ns, "api")
	}, wait).Should(Succeed())
	settings := configMap(g, ns, "infra-settings")
	g.Expect(settings.Data).To(Equal(map[string]string{"greeting": "hi", "password": sha256hex("s3cr3t,with=comma"), "chart": "1.0.0"}))
	g.Expect(settings.Labels).To(HaveKeyWithValue(sluicev1beta1.GitSyncNameLabel, "infra"))
	g.Expect(configMap(g, ns, "api-config").Data).To(Equal(map[string]string{"message": "from the GitSync", "chart": "0.1.0"}))
	gadget := &unstructured.Unstructured{}
	gadget.SetAPIVersion("example.com/v1")
	gadget.SetKind("Gadget")
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "infra"}, gadget)).To(Succeed(), "the chart's CRD is staged before its custom resource")
	infra := getGitSync(g, ns, "infra")
	g.Expect(infra.Status.Helm).NotTo(BeNil())
	g.Expect(infra.Status.Helm.ChartName).To(Equal("infra"))
	g.Expect(infra.Status.Helm.ChartVersion).To(Equal("1.0.0"))
	g.Expect(infra.Status.Helm.ValuesDigest).To(HavePrefix("sha256:"))
	g.Expect(infra.Status.Inventory).To(HaveLen(4)) // CRD, ConfigMap, Deployment, Gadget
	g.Expect(getGitSync(g, ns, "api").Status.Helm.ChartVersion).To(Equal("0.1.0"))
	raw, err := json.Marshal(infra.Status)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(raw)).NotTo(ContainSubstring("s3cr3t"), "values from Secrets never reach status")

	web := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, web)).To(Succeed())
	g.Expect(*web.Spec.Replicas).To(BeEquivalentTo(3))
	// The engine scales the Canary's target to zero between releases.
	web.Spec.Replicas = ptr.To[int32](0)
	g.Expect(env.Client.Update(ctx, web, client.FieldOwner("sluice-canary"))).To(Succeed())

	// A values change (in the ConfigMap) upgrades the release: a new image
	// for the Canary's target, whose replicas stay the engine's.
	oldDigest := infra.Status.Helm.ValuesDigest
	cm := configMap(g, ns, "infra-values")
	cm.Data["values.yaml"] = "greeting: bonjour\nimage: {tag: 2.0.0}\n"
	g.Expect(env.Client.Update(ctx, cm)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "infra-settings").Data["greeting"]).To(Equal("bonjour"))
		d := &appsv1.Deployment{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/example/web:2.0.0"))
		g.Expect(getGitSync(g, ns, "infra").Status.Helm.ValuesDigest).NotTo(Equal(oldDigest))
	}, wait).Should(Succeed())
	g.Consistently(func(g Gomega) {
		d := &appsv1.Deployment{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		g.Expect(*d.Spec.Replicas).To(BeEquivalentTo(0), "GitSync reset the replicas the engine owns")
	}, 3*time.Second, 200*time.Millisecond).Should(Succeed())

	// A broken chart version: the renderer's message, nothing applied,
	// nothing pruned, the release of 1.0.0 keeps running.
	before := getGitSync(g, ns, "infra")
	before.Spec.Helm.Chart.Version = "1.1.0"
	before.Spec.Helm.Values = helmValues(g, "greeting: never applied")
	g.Expect(env.Client.Update(ctx, before)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "infra")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(gitsync.ReasonHelmRenderFailed))
		g.Expect(c.Message).To(ContainSubstring("chart infra 1.1.0"))
		g.Expect(c.Message).To(ContainSubstring("broken.yaml"))
		gs := getGitSync(g, ns, "infra")
		g.Expect(gs.Status.Helm.LastAttemptedChartVersion).To(Equal("1.1.0"))
		g.Expect(gs.Status.Helm.ChartVersion).To(Equal("1.0.0"))
		g.Expect(gs.Status.Inventory).To(HaveLen(4))
	}, wait).Should(Succeed())
	t.Log(ready(g, ns, "infra").Message)
	g.Consistently(func(g Gomega) {
		g.Expect(configMap(g, ns, "infra-settings").Data).To(HaveKeyWithValue("greeting", "bonjour"))
		g.Expect(configMap(g, ns, "infra-settings").Data).To(HaveKeyWithValue("chart", "1.0.0"))
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "infra"}, gadget)).To(Succeed())
	}, 3*time.Second, 500*time.Millisecond).Should(Succeed())

	// A range that matches nothing says so; a range picks the highest.
	before = getGitSync(g, ns, "infra")
	before.Spec.Helm.Chart.Version = ">=3.0.0"
	g.Expect(env.Client.Update(ctx, before)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "infra")
		g.Expect(c.Reason).To(Equal(gitsync.ReasonHelmRenderFailed))
		g.Expect(c.Message).To(ContainSubstring(`no version of chart "infra"`))
		g.Expect(c.Message).To(ContainSubstring(`matches ">=3.0.0"`))
	}, wait).Should(Succeed())
	before = getGitSync(g, ns, "infra")
	before.Spec.Helm.Chart.Version = ">=1.0.0 <3.0.0"
	g.Expect(env.Client.Update(ctx, before)).To(Succeed())
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "infra")
		g.Expect(getGitSync(g, ns, "infra").Status.Helm.ChartVersion).To(Equal("2.0.0"))
		g.Expect(configMap(g, ns, "infra-settings").Data).To(HaveKeyWithValue("greeting", "never applied"))
	}, wait).Should(Succeed())
}

// TestGitSync_HelmPathAndValuesErrors: a chart in the Git checkout follows
// its commits (a template removed from the chart is pruned); a missing
// valuesFrom object fails with HelmValuesFailed and applies nothing.
func TestGitSync_HelmPathAndValuesErrors(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "charts")
	files := map[string]string{
		"charts/api/Chart.yaml":         "apiVersion: v2\nname: api\nversion: 0.1.0\n",
		"charts/api/values.yaml":        "message: from git\n",
		"charts/api/templates/cm.yaml":  apiChart("0.1.0").Files["templates/cm.yaml"],
		"charts/api/templates/old.yaml": configMapYAML("old", "x"),
	}
	r.write("chart", files)
	newGitSync(t, ns, "api", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Helm = &sluicev1beta1.GitSyncHelm{Chart: sluicev1beta1.GitSyncHelmChart{Path: "charts/api"}, ReleaseName: "api"}
	})
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "api")
		g.Expect(configMap(g, ns, "api-config").Data).To(HaveKeyWithValue("message", "from git"))
		configMap(g, ns, "old")
	}, wait).Should(Succeed())
	sha := r.remove("drop old", "charts/api/templates/old.yaml")
	g.Eventually(func(g Gomega) {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "old"}, &corev1.ConfigMap{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a template removed from the chart is pruned: %v", err)
		g.Expect(getGitSync(g, ns, "api").Status.LastAppliedRevision).To(Equal("main@sha1:" + sha))
	}, wait).Should(Succeed())

	gs := getGitSync(g, ns, "api")
	gs.Spec.Helm.ValuesFrom = []sluicev1beta1.GitSyncHelmValuesReference{{Kind: "Secret", Name: "absent"}}
	gs.Spec.Helm.Values = helmValues(g, "message: never applied")
	g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "api")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(gitsync.ReasonHelmValuesFailed))
		g.Expect(c.Message).To(ContainSubstring(`spec.helm.valuesFrom[0]: Secret absent has no key "values.yaml" (set optional: true to skip it)`))
	}, wait).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(configMap(g, ns, "api-config").Data).To(HaveKeyWithValue("message", "from git"))
	}, 2*time.Second, 500*time.Millisecond).Should(Succeed())

	gs = getGitSync(g, ns, "api")
	gs.Spec.Helm.ValuesFrom[0].Optional = true
	g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "api")
		g.Expect(configMap(g, ns, "api-config").Data).To(HaveKeyWithValue("message", "never applied"))
	}, wait).Should(Succeed())
}
