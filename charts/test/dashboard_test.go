package charttest

import (
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// named returns the rendered object of a kind and name, or nil.
func named(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range find(objs, kind) {
		if o.GetName() == name {
			return o
		}
	}
	return nil
}

// The in-cluster dashboard is off by default: nothing of it is rendered, and
// no role may impersonate users or groups (GitSync impersonates only
// ServiceAccounts).
func TestSluiceChart_DashboardOffByDefault(t *testing.T) {
	g := NewWithT(t)
	objs, err := render("sluice", "sluice-system", chartCase{chart: "sluice"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(find(objs, "Deployment")).To(HaveLen(1))
	g.Expect(featuresOf(objs)).NotTo(ContainElement("dashboard"))
	for _, r := range find(objs, "ClusterRole") {
		rules, _, _ := unstructured.NestedSlice(r.Object, "rules")
		for _, rule := range rules {
			rule := rule.(map[string]any)
			if slices.Contains(rule["verbs"].([]any), any("impersonate")) {
				g.Expect(rule["resources"]).NotTo(ContainElement(BeElementOf("users", "groups", "*")), r.GetName())
			}
		}
	}
}

// With dashboard.enabled the chart adds a Deployment running `sluice
// dashboard` as its own ServiceAccount, the generated dashboard role bound to
// that ServiceAccount only, and a ClusterIP Service; no Ingress.
func TestSluiceChart_DashboardEnabled(t *testing.T) {
	g := NewWithT(t)
	objs, err := render("sluice", "sluice-system", chartCase{chart: "sluice"}, "--set", "dashboard.enabled=true")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(find(objs, "Deployment")).To(HaveLen(2))
	g.Expect(find(objs, "Ingress")).To(BeEmpty())
	g.Expect(find(objs, "ServiceAccount")).To(HaveLen(2))
	d := named(objs, "Deployment", "sluice-dashboard")
	g.Expect(d).NotTo(BeNil())
	expectHardenedPod(g, d)
	sa, _, _ := unstructured.NestedString(d.Object, "spec", "template", "spec", "serviceAccountName")
	g.Expect(sa).To(Equal("sluice-dashboard"))
	args := containerArgs(g, d)
	g.Expect(args[0]).To(Equal("dashboard"))
	g.Expect(args).To(ContainElements("--bind-address=:8443", "--health-bind-address=:8081",
		"--allowed-hosts=sluice-dashboard,sluice-dashboard.sluice-system,sluice-dashboard.sluice-system.svc,sluice-dashboard.sluice-system.svc.cluster.local"))
	g.Expect(args).NotTo(ContainElement(HavePrefix("--tls-")))
	g.Expect(args).NotTo(ContainElement(HavePrefix("--oidc-")))

	// The manager's pods and the dashboard's never share a selector.
	labels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
	g.Expect(labels).To(HaveKeyWithValue("app.kubernetes.io/name", "sluice-dashboard"))
	for _, svc := range find(objs, "Service") {
		sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
		if svc.GetName() == "sluice-dashboard" {
			g.Expect(sel).To(HaveKeyWithValue("app.kubernetes.io/name", "sluice-dashboard"))
			typ, _, _ := unstructured.NestedString(svc.Object, "spec", "type")
			g.Expect(typ).To(Equal("ClusterIP"))
			continue
		}
		g.Expect(sel).To(HaveKeyWithValue("app.kubernetes.io/name", "sluice"), svc.GetName())
	}

	// The dashboard's role is bound to its ServiceAccount, not the manager's,
	// and the manager's roles are not bound to the dashboard's.
	b := roleOf(objs, "ClusterRoleBinding", "dashboard")
	g.Expect(b).NotTo(BeNil())
	subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
	g.Expect(subjects).To(ConsistOf(map[string]any{"kind": "ServiceAccount", "name": "sluice-dashboard", "namespace": "sluice-system"}))
	for _, rb := range find(objs, "ClusterRoleBinding") {
		if rb == b {
			continue
		}
		subjects, _, _ := unstructured.NestedSlice(rb.Object, "subjects")
		for _, s := range subjects {
			g.Expect(s.(map[string]any)["name"]).NotTo(Equal("sluice-dashboard"), rb.GetName())
		}
	}
}

func TestSluiceChart_DashboardTLSAndOIDC(t *testing.T) {
	g := NewWithT(t)
	objs, err := render("sluice", "sluice-system", chartCase{chart: "sluice"}, "--set", "dashboard.enabled=true",
		"--set", "dashboard.tls.secretName=dashboard-tls", "--set", "dashboard.hosts={sluice.example.com}",
		"--set", "dashboard.tokenAudiences={sluice-dashboard}", "--set", "dashboard.oidc.issuerURL=https://idp.example.com",
		"--set", "dashboard.oidc.clientID=sluice", "--set", "dashboard.oidc.usernameClaim=email")
	g.Expect(err).NotTo(HaveOccurred())
	d := named(objs, "Deployment", "sluice-dashboard")
	g.Expect(d).NotTo(BeNil())
	g.Expect(containerArgs(g, d)).To(ContainElements("--tls-cert-file=/etc/sluice/dashboard-tls/tls.crt",
		"--tls-key-file=/etc/sluice/dashboard-tls/tls.key", "--token-audiences=sluice-dashboard",
		"--oidc-issuer-url=https://idp.example.com", "--oidc-client-id=sluice", "--oidc-username-claim=email",
		"--oidc-username-prefix=oidc:", "--oidc-groups-claim=groups", "--oidc-groups-prefix=oidc:",
		ContainSubstring(",sluice.example.com")))
	volumes, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	g.Expect(volumes).To(ContainElement(map[string]any{"name": "tls",
		"secret": map[string]any{"secretName": "dashboard-tls", "defaultMode": int64(0o400)}}))
	svc := named(objs, "Service", "sluice-dashboard")
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	g.Expect(ports).To(ConsistOf(HaveKeyWithValue("targetPort", "https")))

	// Bad values are refused with a message that says what to set.
	_, err = render("sluice", "sluice-system", chartCase{chart: "sluice"}, "--set", "dashboard.enabled=true",
		"--set", "dashboard.oidc.issuerURL=https://idp.example.com")
	g.Expect(err).To(MatchError(ContainSubstring("dashboard.oidc.clientID is required")))
	_, err = render("sluice", "sluice-system", chartCase{chart: "sluice"}, "--set", "dashboard.oidc.issuerURL=http://idp.example.com")
	g.Expect(err).To(MatchError(ContainSubstring("issuerURL")))
}
