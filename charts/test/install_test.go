package charttest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// adminKubeconfig writes a kubeconfig of the test control plane's admin.
func adminKubeconfig(t *testing.T, admin *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: admin.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: admin.CertData, ClientKeyData: admin.KeyData, Token: admin.BearerToken}
	kc.Contexts["admin"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	kc.CurrentContext = "admin"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCharts_HelmInstall installs both charts with helm itself into the
// test control plane, and checks that helm install refuses a bad value
// before creating anything.
func TestCharts_HelmInstall(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	kubeconfig := adminKubeconfig(t, env.Config)
	for _, chart := range []string{"sluice", "loadtester"} {
		ns, err := env.Namespace(ctx, "install")
		g.Expect(err).NotTo(HaveOccurred())
		release := "installed-" + chart

		out, err := helm("install", release+"-bad", filepath.Join("charts", chart), "--kubeconfig", kubeconfig,
			"--namespace", ns, "--set", "logLevel=verbose")
		g.Expect(err).To(HaveOccurred(), "helm install accepted a bad value:\n%s", out)
		g.Expect(out).To(ContainSubstring("at '/logLevel': value must be one of 'debug', 'info', 'error'"))
		list := &appsv1.DeploymentList{}
		g.Expect(env.Client.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(BeEmpty(), "a refused install created objects")

		out, err = helm("install", release, filepath.Join("charts", chart), "--kubeconfig", kubeconfig, "--namespace", ns)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).To(ContainSubstring("STATUS: deployed"))
		d := &appsv1.Deployment{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: release}, d)).To(Succeed(), "no Deployment %s after helm install:\n%s", release, out)
		g.Expect(d.Labels).To(HaveKeyWithValue("app.kubernetes.io/instance", release))
		out, err = helm("uninstall", release, "--kubeconfig", kubeconfig, "--namespace", ns)
		g.Expect(err).NotTo(HaveOccurred(), fmt.Sprintf("uninstall: %s", out))
	}
}
