package helm_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-cd/sluice/pkg/gitsync/helm"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// webChart renders a ConfigMap from its values, a hook and a CRD, and
// refuses a non-integer replicaCount with its values.schema.json.
func webChart(version string) testenv.Chart {
	return testenv.Chart{
		Name: "web", Version: version,
		Values: map[string]any{"replicaCount": 1, "greeting": "hello", "auth": map[string]any{"user": "admin"}},
		Files: map[string]string{
			"templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
  namespace: {{ .Release.Namespace }}
data:
  chartVersion: {{ .Chart.Version | quote }}
  greeting: {{ .Values.greeting | quote }}
  replicas: {{ .Values.replicaCount | quote }}
  password: {{ .Values.auth.password | default "" | quote }}
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
  install: {{ .Release.IsInstall | quote }}
`,
			"templates/hook.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations: {"helm.sh/hook": pre-install}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: busybox}]}}}
`,
			"crds/widgets.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
`,
			"values.schema.json": `{"type": "object", "properties": {"replicaCount": {"type": "integer", "minimum": 0}}}`,
		},
	}
}

func repoWith(t *testing.T, charts ...testenv.Chart) *testenv.HelmRepo {
	t.Helper()
	r, err := testenv.StartHelmRepo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if err := r.Add(charts...); err != nil {
		t.Fatal(err)
	}
	return r
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func data(g Gomega, objs []*unstructured.Unstructured, name string) map[string]string {
	o := find(objs, "ConfigMap", name)
	g.Expect(o).NotTo(BeNil(), "ConfigMap %s not rendered", name)
	d, _, _ := unstructured.NestedStringMap(o.Object, "data")
	return d
}

func TestRender_Repository(t *testing.T) {
	g := NewWithT(t)
	r := repoWith(t, webChart("1.0.0"), webChart("1.2.0"), webChart("2.0.0"), webChart("1.3.0-rc.1"))
	ren := &helm.Renderer{}
	req := helm.Request{
		Source:      helm.Source{Repository: r.URL, Name: "web", Version: ">=1.0.0 <2.0.0"},
		ReleaseName: "site", Namespace: "apps",
		Values:      map[string]any{"greeting": "hi", "auth": map[string]any{"password": "s3cr3t"}},
		KubeVersion: "v1.34.2",
	}
	res, err := ren.Render(context.Background(), req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.ChartName).To(Equal("web"))
	g.Expect(res.ChartVersion).To(Equal("1.2.0"), "the highest stable version in range")
	g.Expect(data(g, res.Objects, "site-settings")).To(Equal(map[string]string{
		"chartVersion": "1.2.0", "greeting": "hi", "replicas": "1", "password": "s3cr3t", "kube": "v1.34.2", "install": "true",
	}))
	g.Expect(find(res.Objects, "ConfigMap", "site-settings").GetNamespace()).To(Equal("apps"))
	g.Expect(find(res.Objects, "Job", "site-migrate")).To(BeNil(), "hooks are apart from the objects")
	g.Expect(res.Hooks).To(HaveLen(1))
	g.Expect(res.Hooks[0].Object.GetName()).To(Equal("site-migrate"))
	g.Expect(res.Hooks[0].Object.GetNamespace()).To(Equal("apps"))
	g.Expect(res.SkippedHooks).To(Equal(0))
	crd := find(res.Objects, "CustomResourceDefinition", "widgets.example.com")
	g.Expect(crd).NotTo(BeNil())
	g.Expect(crd.GetAnnotations()).To(HaveKeyWithValue(helm.IfNotPresentAnnotation, helm.IfNotPresentValue), "Create is the default CRD policy")
	g.Expect(crd.GetAnnotations()).To(HaveKeyWithValue("gitsync.sluice.dev/prune", "disabled"), "a chart's CRDs are never pruned")
	g.Expect(res.Objects[0].GetKind()).To(Equal("CustomResourceDefinition"), "CRDs come first")

	// The archive of a version already downloaded comes from the cache; the
	// index is read every time (a new version in range must be seen).
	g.Expect(r.Requests("/web-1.2.0.tgz")).To(Equal(1))
	_, err = ren.Render(context.Background(), req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Requests("/web-1.2.0.tgz")).To(Equal(1))
	g.Expect(r.Requests("/index.yaml")).To(Equal(2))

	g.Expect(r.Add(webChart("1.4.0"))).To(Succeed())
	res, err = ren.Render(context.Background(), req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.ChartVersion).To(Equal("1.4.0"), "a new version in range is picked up")
}

func TestRender_CRDPolicies(t *testing.T) {
	r := repoWith(t, webChart("1.0.0"))
	for _, tt := range []struct {
		policy     string
		crd        bool
		annotation bool
	}{
		{helm.CRDsCreate, true, true},
		{"", true, true},
		{helm.CRDsCreateReplace, true, false},
		{helm.CRDsSkip, false, false},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			g := NewWithT(t)
			res, err := (&helm.Renderer{}).Render(context.Background(), helm.Request{Source: helm.Source{Repository: r.URL, Name: "web"}, ReleaseName: "x", Namespace: "default", CRDs: tt.policy})
			g.Expect(err).NotTo(HaveOccurred())
			crd := find(res.Objects, "CustomResourceDefinition", "widgets.example.com")
			g.Expect(crd != nil).To(Equal(tt.crd))
			if crd != nil {
				_, ok := crd.GetAnnotations()[helm.IfNotPresentAnnotation]
				g.Expect(ok).To(Equal(tt.annotation))
			}
		})
	}
}

func TestRender_RepositoryErrors(t *testing.T) {
	r := repoWith(t, webChart("1.0.0"))
	broken := webChart("1.1.0")
	broken.Files["templates/broken.yaml"] = "{{ .Values.nope.deeper }}"
	g := NewWithT(t)
	g.Expect(r.Add(broken)).To(Succeed())

	for _, tt := range []struct {
		name     string
		req      helm.Request
		ren      *helm.Renderer
		fail     int
		message  []string
		rendered string
	}{
		{name: "chart not in the index", req: helm.Request{Source: helm.Source{Repository: r.URL, Name: "api"}}, message: []string{r.URL, `chart "api" not found in the index`}},
		{name: "no version in range", req: helm.Request{Source: helm.Source{Repository: r.URL, Name: "web", Version: ">=3.0.0"}}, message: []string{`no version of chart "web" matches ">=3.0.0" (versions: 1.1.0, 1.0.0)`}},
		{name: "repository answers 500", req: helm.Request{Source: helm.Source{Repository: r.URL, Name: "web"}}, fail: http.StatusInternalServerError, message: []string{"index.yaml", "500 Internal Server Error"}},
		{name: "index too large", req: helm.Request{Source: helm.Source{Repository: r.URL, Name: "web"}}, ren: &helm.Renderer{MaxIndexSize: 64}, message: []string{"response too large", "the limit is 64"}},
		{name: "archive too large", req: helm.Request{Source: helm.Source{Repository: r.URL, Name: "web", Version: "1.0.0"}}, ren: &helm.Renderer{MaxChartSize: 100}, message: []string{"web-1.0.0.tgz", "response too large"}},
		{name: "template error", req: helm.Request{Source: helm.Source{Repository: r.URL, Name: "web", Version: "1.1.0"}}, message: []string{"chart web 1.1.0", "broken.yaml", "nil pointer evaluating interface {}.deeper"}, rendered: "1.1.0"},
		{name: "values refused by the schema", req: helm.Request{Source: helm.Source{Repository: r.URL, Name: "web", Version: "1.0.0"}, Values: map[string]any{"replicaCount": "three"}}, message: []string{"chart web 1.0.0", "replicaCount", "got string, want integer"}, rendered: "1.0.0"},
		{name: "invalid constraint", req: helm.Request{Source: helm.Source{Repository: r.URL, Name: "web", Version: ">=1.0.0 <<2"}}, message: []string{`invalid version constraint ">=1.0.0 <<2"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r.Fail.Store(int32(tt.fail))
			defer r.Fail.Store(0)
			ren := tt.ren
			if ren == nil {
				ren = &helm.Renderer{}
			}
			tt.req.ReleaseName, tt.req.Namespace = "x", "default"
			res, err := ren.Render(context.Background(), tt.req)
			g.Expect(err).To(HaveOccurred())
			t.Log(err)
			g.Expect(helm.IsTransient(err)).To(Equal(tt.fail >= 500), "only a server error may pass by itself")
			if tt.rendered != "" {
				g.Expect(res).NotTo(BeNil())
				g.Expect(res.ChartVersion).To(Equal(tt.rendered), "the version that failed to render is named")
				g.Expect(res.Objects).To(BeEmpty())
			} else {
				g.Expect(res).To(BeNil())
			}
			for _, m := range tt.message {
				g.Expect(err.Error()).To(ContainSubstring(m))
			}
		})
	}
}

func TestRender_RepositoryBasicAuth(t *testing.T) {
	g := NewWithT(t)
	r := repoWith(t, webChart("1.0.0"))
	r.User, r.Password = "reader", "p4ss,w0rd"
	req := helm.Request{Source: helm.Source{Repository: r.URL + "/", Name: "web"}, ReleaseName: "x", Namespace: "default"}
	_, err := (&helm.Renderer{}).Render(context.Background(), req)
	g.Expect(err).To(MatchError(ContainSubstring("401 Unauthorized")))

	req.Credentials = &helm.Credentials{Username: "reader", Password: "wrong"}
	_, err = (&helm.Renderer{}).Render(context.Background(), req)
	g.Expect(err).To(MatchError(ContainSubstring("401 Unauthorized")))
	g.Expect(err.Error()).NotTo(ContainSubstring("wrong"), "credentials never appear in errors")

	req.Credentials = &helm.Credentials{Username: "reader", Password: "p4ss,w0rd"}
	res, err := (&helm.Renderer{}).Render(context.Background(), req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.ChartVersion).To(Equal("1.0.0"))
}

func TestRender_OCI(t *testing.T) {
	g := NewWithT(t)
	reg := testenv.StartOCIRegistry()
	t.Cleanup(reg.Close)
	var ref string
	for _, v := range []string{"0.9.0", "1.0.0", "1.1.0", "2.0.0-beta.1"} {
		var err error
		ref, err = reg.Push("charts", webChart(v))
		g.Expect(err).NotTo(HaveOccurred())
	}
	ren := &helm.Renderer{}
	res, err := ren.Render(context.Background(), helm.Request{Source: helm.Source{OCI: ref, Version: "~1.0"}, ReleaseName: "api", Namespace: "apps"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.ChartVersion).To(Equal("1.0.0"))
	g.Expect(data(g, res.Objects, "api-settings")).To(HaveKeyWithValue("chartVersion", "1.0.0"))

	res, err = ren.Render(context.Background(), helm.Request{Source: helm.Source{OCI: ref}, ReleaseName: "api", Namespace: "apps"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.ChartVersion).To(Equal("1.1.0"), "the highest stable tag without a constraint")

	_, err = ren.Render(context.Background(), helm.Request{Source: helm.Source{OCI: ref, Version: ">=3.0.0"}, ReleaseName: "api", Namespace: "apps"})
	g.Expect(err).To(MatchError(ContainSubstring(`no version of chart ` + ref + ` matches ">=3.0.0" (tags: 2.0.0-beta.1, 1.1.0, 1.0.0, 0.9.0)`)))

	_, err = ren.Render(context.Background(), helm.Request{Source: helm.Source{OCI: "oci://" + reg.Host + "/charts/missing"}, ReleaseName: "api", Namespace: "apps"})
	g.Expect(err).To(MatchError(ContainSubstring("charts/missing")))

	_, err = (&helm.Renderer{MaxChartSize: 200}).Render(context.Background(), helm.Request{Source: helm.Source{OCI: ref, Version: "1.0.0"}, ReleaseName: "api", Namespace: "apps"})
	g.Expect(err).To(MatchError(ContainSubstring("response too large")))
	g.Expect(helm.IsTransient(err)).To(BeFalse(), "a chart over the limit stays over it")
}

func TestRender_Path(t *testing.T) {
	g := NewWithT(t)
	checkout := t.TempDir()
	g.Expect(webChart("0.1.0").WriteDir(filepath.Join(checkout, "charts", "web"))).To(Succeed())
	res, err := (&helm.Renderer{}).Render(context.Background(), helm.Request{Source: helm.Source{Path: "charts/web"}, CheckoutDir: checkout, ReleaseName: "w", Namespace: "default"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.ChartVersion).To(Equal("0.1.0"))
	g.Expect(data(g, res.Objects, "w-settings")).To(HaveKeyWithValue("greeting", "hello"))

	_, err = (&helm.Renderer{}).Render(context.Background(), helm.Request{Source: helm.Source{Path: "charts/nope"}, CheckoutDir: checkout, ReleaseName: "w", Namespace: "default"})
	g.Expect(err).To(MatchError(ContainSubstring(`chart path "charts/nope"`)))
	g.Expect(err.Error()).NotTo(ContainSubstring(checkout), "the controller's directories mean nothing to users")

	_, err = (&helm.Renderer{}).Render(context.Background(), helm.Request{Source: helm.Source{Path: "../etc"}, CheckoutDir: checkout, ReleaseName: "w", Namespace: "default"})
	g.Expect(err).To(MatchError(ContainSubstring("leaves the checkout")))

	outside := t.TempDir()
	g.Expect(os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o600)).To(Succeed())
	g.Expect(os.Symlink(filepath.Join(outside, "secret"), filepath.Join(checkout, "charts", "web", "stolen"))).To(Succeed())
	_, err = (&helm.Renderer{}).Render(context.Background(), helm.Request{Source: helm.Source{Path: "charts/web"}, CheckoutDir: checkout, ReleaseName: "w", Namespace: "default"})
	g.Expect(err).To(MatchError(ContainSubstring("leads out of the checkout")))
	g.Expect(os.Symlink(outside, filepath.Join(checkout, "charts", "out"))).To(Succeed())
	_, err = (&helm.Renderer{}).Render(context.Background(), helm.Request{Source: helm.Source{Path: "charts/out"}, CheckoutDir: checkout, ReleaseName: "w", Namespace: "default"})
	g.Expect(err).To(MatchError(ContainSubstring("leaves the checkout through a symlink")))
}

func TestValues_MergeAndSetString(t *testing.T) {
	g := NewWithT(t)
	base, err := helm.ParseValues([]byte("a: {b: 1, c: [1, 2]}\nd: x\n"))
	g.Expect(err).NotTo(HaveOccurred())
	over, err := helm.ParseValues([]byte("a: {c: [3], e: true}\nd: null\n"))
	g.Expect(err).NotTo(HaveOccurred())
	got := helm.Merge(base, over)
	g.Expect(got).To(Equal(map[string]any{"a": map[string]any{"b": float64(1), "c": []any{float64(3)}, "e": true}, "d": nil}))

	v := map[string]any{}
	g.Expect(helm.SetString(v, "auth.password", `p,a=s\s`)).To(Succeed())
	g.Expect(helm.SetString(v, `ingress.annotations.nginx\.io/auth`, "on")).To(Succeed())
	g.Expect(helm.SetString(v, "servers[1].port", "8080")).To(Succeed())
	g.Expect(v).To(Equal(map[string]any{
		"auth":    map[string]any{"password": `p,a=s\s`},
		"ingress": map[string]any{"annotations": map[string]any{"nginx.io/auth": "on"}},
		"servers": []any{nil, map[string]any{"port": "8080"}},
	}))
	err = helm.SetString(v, "a[100000]", "s3cr3t")
	g.Expect(err).To(MatchError(ContainSubstring(`invalid target path "a[100000]"`)))
	g.Expect(err.Error()).NotTo(ContainSubstring("s3cr3t"))

	_, err = helm.ParseValues([]byte("- a\n- b\n"))
	g.Expect(err).To(MatchError(ContainSubstring("not a YAML map of values")))
	empty, err := helm.ParseValues(nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(empty).To(BeEmpty())

	d1, _ := helm.ValuesDigest(map[string]any{"a": 1, "b": 2})
	d2, _ := helm.ValuesDigest(map[string]any{"b": 2, "a": 1})
	g.Expect(d1).To(Equal(d2))
	g.Expect(strings.HasPrefix(d1, "sha256:")).To(BeTrue())
}
