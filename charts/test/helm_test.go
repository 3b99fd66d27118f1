package charttest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// helm runs the helm binary of bin/ with its own config, cache and data
// directories, so tests never read or write the user's helm state.
func helm(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(root, "bin", "helm"), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// chartCase is one values set of a chart: the defaults or an example.
type chartCase struct {
	chart   string // directory under charts/
	example string // file under charts/<chart>/examples, or "" for the defaults
}

func (c chartCase) String() string {
	if c.example == "" {
		return c.chart + "/defaults"
	}
	return c.chart + "/" + strings.TrimSuffix(c.example, ".yaml")
}

func (c chartCase) chartDir() string { return filepath.Join("charts", c.chart) }

// valuesArgs are the -f arguments of the case.
func (c chartCase) valuesArgs() []string {
	if c.example == "" {
		return nil
	}
	return []string{"-f", filepath.Join(c.chartDir(), "examples", c.example)}
}

// chartCases lists the defaults and every example of both charts.
func chartCases(t *testing.T) []chartCase {
	t.Helper()
	var cases []chartCase
	for _, chart := range []string{"sluice", "loadtester"} {
		cases = append(cases, chartCase{chart: chart})
		files, err := filepath.Glob(filepath.Join(root, "charts", chart, "examples", "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("charts/%s/examples has no values examples", chart)
		}
		for _, f := range files {
			cases = append(cases, chartCase{chart: chart, example: filepath.Base(f)})
		}
	}
	return cases
}

// render runs helm template and parses every document it prints.
func render(release, namespace string, c chartCase, extra ...string) ([]*unstructured.Unstructured, error) {
	args := append([]string{"template", release, c.chartDir(), "--namespace", namespace}, c.valuesArgs()...)
	args = append(args, extra...)
	out, err := helm(args...)
	if err != nil {
		return nil, err
	}
	return parseDocs(out)
}

// parseDocs splits multi-document YAML into objects, dropping empty documents.
func parseDocs(s string) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(s)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("rendered YAML does not parse: %w\n%s", err, doc)
		}
		if s := strings.TrimSpace(string(js)); s == "null" || s == "{}" {
			continue
		}
		u := &unstructured.Unstructured{}
		// Unstructured's decoder keeps integers as int64.
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("rendered object is not a Kubernetes object: %w\n%s", err, doc)
		}
		objs = append(objs, u)
	}
}

// find returns the rendered objects of a kind.
func find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	return found
}

// TestCharts_LintAndTemplate lints and renders both charts with their
// defaults and every example, and checks what every rendering must hold.
func TestCharts_LintAndTemplate(t *testing.T) {
	for _, c := range chartCases(t) {
		t.Run(c.String(), func(t *testing.T) {
			g := NewWithT(t)
			out, err := helm(append([]string{"lint", "--strict", c.chartDir()}, c.valuesArgs()...)...)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(ContainSubstring("0 chart(s) failed"))

			objs, err := render("lint", "sluice-system", c)
			g.Expect(err).NotTo(HaveOccurred())
			deployments := find(objs, "Deployment")
			g.Expect(deployments).To(HaveLen(1))
			expectHardenedPod(g, deployments[0])
			g.Expect(find(objs, "Service")).NotTo(BeEmpty())
			g.Expect(find(objs, "ServiceAccount")).To(HaveLen(1))
		})
	}
}

// expectHardenedPod checks the pod runs non-root, read-only, without
// capabilities, with the runtime's seccomp profile, probes and resources.
func expectHardenedPod(g Gomega, d *unstructured.Unstructured) {
	pod, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
	g.Expect(pod).To(HaveKeyWithValue("securityContext", And(
		HaveKeyWithValue("runAsNonRoot", true),
		HaveKeyWithValue("seccompProfile", HaveKeyWithValue("type", "RuntimeDefault")))))
	containers, _, _ := unstructured.NestedSlice(pod, "containers")
	g.Expect(containers).To(HaveLen(1))
	ctr := containers[0].(map[string]any)
	g.Expect(ctr).To(HaveKeyWithValue("securityContext", And(
		HaveKeyWithValue("readOnlyRootFilesystem", true),
		HaveKeyWithValue("allowPrivilegeEscalation", false),
		HaveKeyWithValue("runAsNonRoot", true),
		HaveKeyWithValue("capabilities", HaveKeyWithValue("drop", ConsistOf("ALL"))))))
	g.Expect(ctr).To(HaveKey("livenessProbe"))
	g.Expect(ctr).To(HaveKey("readinessProbe"))
	g.Expect(ctr).To(HaveKeyWithValue("resources", HaveKey("requests")))
}

// TestSluiceChart_Defaults checks the defaults the issue asks for: two
// replicas with leader election, a PodDisruptionBudget, probes on the
// manager's health port, a metrics Service, no ServiceMonitor.
func TestSluiceChart_Defaults(t *testing.T) {
	g := NewWithT(t)
	objs, err := render("sluice", "sluice-system", chartCase{chart: "sluice"})
	g.Expect(err).NotTo(HaveOccurred())
	d := find(objs, "Deployment")[0]
	replicas, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
	g.Expect(replicas).To(Equal(int64(2)))
	args := containerArgs(g, d)
	g.Expect(args).To(ContainElements("--leader-elect=true", "--leader-election-namespace=sluice-system",
		"--health-probe-bind-address=:8081", "--metrics-bind-address=:8080", "--default-provider=kubernetes", "--metric-concurrency=8",
		"--selector-labels=app,name,app.kubernetes.io/name", "--max-concurrent-reconciles=32", "--max-concurrent-git-reconciles=8"))
	objs2, err := render("sluice", "sluice-system", chartCase{chart: "sluice"}, "--set", "selectorLabels={example.com/component,app}")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(containerArgs(g, find(objs2, "Deployment")[0])).To(ContainElement("--selector-labels=example.com/component,app"))
	g.Expect(find(objs, "PodDisruptionBudget")).To(HaveLen(1))
	g.Expect(find(objs, "ServiceMonitor")).To(BeEmpty())
	svc := find(objs, "Service")
	g.Expect(svc).To(HaveLen(1))
	g.Expect(svc[0].GetName()).To(Equal("sluice-metrics"))

	// Every feature's role is bound; the routers and notifications can be turned off.
	g.Expect(featuresOf(objs)).To(ConsistOf("manager", "engine", "gitsync", "gitsync-apply", "nginx", "skipper", "istio", "gatewayapi", "traefik", "linkerd", "smi", "gloo", "kuma", "apisix", "contour", "knative", "notifications"))
	objs, err = render("sluice", "sluice-system", chartCase{chart: "sluice"},
		"--set", "routers.istio.enabled=false", "--set", "routers.traefik.enabled=false", "--set", "notifications.enabled=false",
		"--set", "routers.smi.enabled=false", "--set", "routers.gloo.enabled=false", "--set", "routers.kuma.enabled=false", "--set", "routers.apisix.enabled=false",
		"--set", "routers.contour.enabled=false", "--set", "routers.knative.enabled=false",
		"--set", "gitSync.apply.rules=null")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(featuresOf(objs)).To(ConsistOf("manager", "engine", "gitsync", "gatewayapi", "linkerd", "nginx", "skipper"))
	g.Expect(args).NotTo(ContainElement(HavePrefix("--enable-promotion")))

	// Promotion is off by default; on, its role is bound and the author passed.
	objs, err = render("sluice", "sluice-system", chartCase{chart: "sluice"},
		"--set", "promotion.enabled=true", "--set", "promotion.author.email=bot@example.com")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(featuresOf(objs)).To(ContainElement("promotion"))
	g.Expect(containerArgs(g, find(objs, "Deployment")[0])).To(ContainElements(
		"--enable-promotion=true", "--promotion-author-name=Sluice", "--promotion-author-email=bot@example.com"))
	g.Expect(containerArgs(g, find(objs, "Deployment")[0])).NotTo(ContainElement(HavePrefix("--promotion-signing-key")))
	// Signing mounts the key's Secret where the flag points.
	objs, err = render("sluice", "sluice-system", chartCase{chart: "sluice"},
		"--set", "promotion.enabled=true", "--set", "promotion.signing.secretName=promotion-signing-key")
	g.Expect(err).NotTo(HaveOccurred())
	d = find(objs, "Deployment")[0]
	g.Expect(containerArgs(g, d)).To(ContainElement("--promotion-signing-key=/etc/sluice/promotion-signing/key"))
	volumes, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	g.Expect(volumes).To(ContainElement(HaveKeyWithValue("secret", HaveKeyWithValue("secretName", "promotion-signing-key"))))
}

// TestSluiceChart_Examples checks what each documented example promises.
func TestSluiceChart_Examples(t *testing.T) {
	g := NewWithT(t)
	get := func(example string) []*unstructured.Unstructured {
		objs, err := render("sluice", "sluice-system", chartCase{chart: "sluice", example: example})
		g.Expect(err).NotTo(HaveOccurred())
		return objs
	}

	objs := get("istio.yaml")
	g.Expect(featuresOf(objs)).To(ConsistOf("manager", "engine", "gitsync", "gitsync-apply", "nginx", "skipper", "istio", "notifications"))
	g.Expect(containerArgs(g, find(objs, "Deployment")[0])).To(ContainElements("--default-provider=istio",
		"--default-alert-provider=sluice-system/slack", "--metrics-server=http://prometheus.istio-system:9090", "--max-concurrent-rollouts=5"))

	objs = get("gitops.yaml")
	g.Expect(containerArgs(g, find(objs, "Deployment")[0])).To(ContainElements("--git-url=https://git.example.com/platform/fleet.git",
		"--git-path=clusters/production", "--git-secret=fleet-git-credentials", "--git-interval=5m", "--git-receiver-address=:9292"))
	g.Expect(find(objs, "Service")).To(HaveLen(2))
	apply := roleOf(objs, "ClusterRole", "gitsync-apply")
	g.Expect(apply).NotTo(BeNil())
	rules, _, _ := unstructured.NestedSlice(apply.Object, "rules")
	g.Expect(rules).To(HaveLen(3))

	objs = get("gitsync-impersonation.yaml")
	g.Expect(roleOf(objs, "ClusterRole", "gitsync-apply")).To(BeNil())
	g.Expect(roleOf(objs, "ClusterRoleBinding", "gitsync-apply")).To(BeNil())

	objs = get("gitsync-cluster-admin.yaml")
	g.Expect(roleOf(objs, "ClusterRole", "gitsync-apply")).To(BeNil())
	binding := roleOf(objs, "ClusterRoleBinding", "gitsync-apply")
	g.Expect(binding).NotTo(BeNil())
	ref, _, _ := unstructured.NestedString(binding.Object, "roleRef", "name")
	g.Expect(ref).To(Equal("cluster-admin"))

	objs = get("single-replica.yaml")
	g.Expect(find(objs, "PodDisruptionBudget")).To(BeEmpty())
	g.Expect(containerArgs(g, find(objs, "Deployment")[0])).To(ContainElements("--leader-elect=false", "--watch-namespace=apps", "--log-encoding=console"))

	objs = get("monitoring.yaml")
	g.Expect(find(objs, "ServiceMonitor")).To(HaveLen(1))
	g.Expect(containerArgs(g, find(objs, "Deployment")[0])).To(ContainElement("--metrics-secure=true"))
	dashboards := find(objs, "ConfigMap")
	g.Expect(dashboards).To(HaveLen(1))
	g.Expect(dashboards[0].GetLabels()).To(HaveKeyWithValue("grafana_dashboard", "1"))
	files, err := filepath.Glob(filepath.Join(root, "charts", "sluice", "dashboards", "*.json"))
	g.Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	data, _, _ := unstructured.NestedStringMap(dashboards[0].Object, "data")
	g.Expect(data).To(HaveLen(len(names)))
	for _, n := range names {
		g.Expect(data).To(HaveKey(n))
	}
}

// TestLoadtesterChart_ShellTasksAndAuth checks that shell tasks are off by
// default, that the allow-list example enables exactly its entries, and
// that the clients file comes from the Secret.
func TestLoadtesterChart_ShellTasksAndAuth(t *testing.T) {
	g := NewWithT(t)
	objs, err := render("lt", "test", chartCase{chart: "loadtester"})
	g.Expect(err).NotTo(HaveOccurred())
	d := find(objs, "Deployment")[0]
	args := containerArgs(g, d)
	g.Expect(args).NotTo(ContainElement(HavePrefix("--enable-shell-tasks")))
	g.Expect(args).To(ContainElements("--auth-file=/etc/sluice-loadtester/auth.yaml", "--gate-store=configmap"))
	vols, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	g.Expect(vols).To(ContainElement(HaveKeyWithValue("secret", HaveKeyWithValue("secretName", "sluice-loadtester-auth"))))
	g.Expect(find(objs, "ConfigMap")).To(BeEmpty())
	g.Expect(find(objs, "Role")).To(HaveLen(1))

	objs, err = render("lt", "test", chartCase{chart: "loadtester", example: "shell-tasks.yaml"})
	g.Expect(err).NotTo(HaveOccurred())
	args = containerArgs(g, find(objs, "Deployment")[0])
	g.Expect(args).To(ContainElements("--enable-shell-tasks", "--shell-allow-file=/etc/sluice-loadtester-allow/allow.yaml",
		`--allowed-target-hosts=[a-z0-9-]+\.test(\.svc(\.cluster\.local)?)?`))
	cms := find(objs, "ConfigMap")
	g.Expect(cms).To(HaveLen(1))
	allow, _, _ := unstructured.NestedString(cms[0].Object, "data", "allow.yaml")
	list := struct {
		Commands []map[string]any `json:"commands"`
	}{}
	g.Expect(yaml.Unmarshal([]byte(allow), &list)).To(Succeed())
	g.Expect(list.Commands).To(ConsistOf(
		HaveKeyWithValue("exact", "helm test podinfo -n test"),
		HaveKeyWithValue("regexp", "kubectl -n test rollout status deploy/[a-z-]+")))
}

// TestCharts_BadValuesAreRejected checks that wrong values fail helm
// template (and so helm install) with a message naming the value.
func TestCharts_BadValuesAreRejected(t *testing.T) {
	cases := []struct {
		name    string
		chart   string
		set     []string
		wantErr []string
	}{
		{"unknown log level", "sluice", []string{"logLevel=verbose"}, []string{"/logLevel", "'debug', 'info', 'error'"}},
		{"misspelt key", "sluice", []string{"replicas=3"}, []string{"additional properties 'replicas' not allowed"}},
		{"no replicas", "sluice", []string{"replicaCount=0"}, []string{"/replicaCount", "minimum"}},
		{"string replicas", "sluice", []string{"replicaCount=two"}, []string{"/replicaCount"}},
		{"credentials in the Git URL", "sluice", []string{"gitSync.bootstrap.url=https://bot:s3cr3t@git.example.com/a.git"}, []string{"gitSync.bootstrap.url must not carry credentials"}},
		{"credentials in the metrics server", "sluice", []string{"metricsServer=http://admin:s3cr3t@prometheus:9090"}, []string{"metricsServer must not carry credentials"}},
		{"metrics server without scheme", "sluice", []string{"metricsServer=prometheus:9090"}, []string{"/metricsServer"}},
		{"unknown provider", "sluice", []string{"defaultProvider=appmesh"}, []string{"/defaultProvider"}},
		{"bad duration", "sluice", []string{"leaderElection.leaseDuration=15"}, []string{"/leaderElection/leaseDuration"}},
		{"bad alert provider reference", "sluice", []string{"defaultAlertProvider=slack"}, []string{"/defaultAlertProvider"}},
		{"cluster name with a slash", "sluice", []string{"clusterName=eu/prod"}, []string{"/clusterName"}},
		{"unknown verb in apply rules", "sluice", []string{"gitSync.apply.rules[0].verbs[0]=escalate", "gitSync.apply.rules[0].resources[0]=roles"}, []string{"/gitSync/apply/rules/0/verbs/0"}},
		{"default router disabled", "sluice", []string{"defaultProvider=traefik", "routers.traefik.enabled=false"}, []string{`defaultProvider is "traefik" but routers.traefik.enabled is false`}},
		{"default smi router disabled", "sluice", []string{"defaultProvider=smi:v1alpha2", "routers.smi.enabled=false"}, []string{`defaultProvider is "smi:v1alpha2" but routers.smi.enabled is false`}},
		{"replicas without leader election", "sluice", []string{"leaderElection.enabled=false"}, []string{"leaderElection.enabled=false with replicaCount > 1"}},
		{"bootstrap without URL", "sluice", []string{"gitSync.bootstrap.enabled=true"}, []string{"gitSync.bootstrap.enabled needs gitSync.bootstrap.url"}},
		{"shell tasks without allow-list", "loadtester", []string{"shellTasks.enabled=true"}, []string{"shellTasks.enabled needs a non-empty shellTasks.allow"}},
		{"allow-list without shell tasks", "loadtester", []string{"shellTasks.allow[0].exact=ls"}, []string{"shellTasks.allow is set but shellTasks.enabled is false"}},
		{"allow-list entry with neither form", "loadtester", []string{"shellTasks.enabled=true", "shellTasks.allow[0].shell=true"}, []string{"/shellTasks/allow/0"}},
		{"no auth Secret", "loadtester", []string{"auth.secretName="}, []string{"/auth/secretName"}},
		{"promotion author without an email", "sluice", []string{"promotion.author.email=sluice"}, []string{"/promotion/author/email"}},
		{"unknown gate store", "loadtester", []string{"gateStore=etcd"}, []string{"/gateStore"}},
		{"no metric concurrency", "sluice", []string{"metricConcurrency=0"}, []string{"/metricConcurrency", "minimum"}},
		{"no git workers", "sluice", []string{"maxConcurrentGitReconciles=0"}, []string{"/maxConcurrentGitReconciles", "minimum"}},
		{"no selector labels", "sluice", []string{"selectorLabels=null"}, []string{"selectorLabels must name at least one label"}},
		{"selector label with a space", "sluice", []string{"selectorLabels[0]=my app"}, []string{"/selectorLabels/0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			args := []string{"template", "x", filepath.Join("charts", tc.chart)}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := helm(args...)
			g.Expect(err).To(HaveOccurred(), "helm accepted %v:\n%s", tc.set, out)
			for _, want := range tc.wantErr {
				g.Expect(out).To(ContainSubstring(want))
			}
			g.Expect(out).NotTo(ContainSubstring("s3cr3t"), "the error echoes the credentials")
		})
	}
}

// containerArgs returns the args of the Deployment's only container.
func containerArgs(g Gomega, d *unstructured.Unstructured) []string {
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	g.Expect(containers).To(HaveLen(1))
	raw, _ := containers[0].(map[string]any)["args"].([]any)
	args := make([]string, 0, len(raw))
	for _, a := range raw {
		args = append(args, a.(string))
	}
	return args
}

// featuresOf lists the sluice.dev/rbac-feature labels of the rendered ClusterRoleBindings.
func featuresOf(objs []*unstructured.Unstructured) []string {
	var features []string
	for _, o := range find(objs, "ClusterRoleBinding") {
		features = append(features, o.GetLabels()["sluice.dev/rbac-feature"])
	}
	sort.Strings(features)
	return features
}

// roleOf finds the rendered object of a kind and feature label.
func roleOf(objs []*unstructured.Unstructured, kind, feature string) *unstructured.Unstructured {
	for _, o := range find(objs, kind) {
		if o.GetLabels()["sluice.dev/rbac-feature"] == feature {
			return o
		}
	}
	return nil
}
