package gitsync_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/revision"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// startRemote starts a second control plane ("production") and returns it
// with an admin kubeconfig of it.
func startRemote(t *testing.T) (*testenv.Environment, []byte) {
	t.Helper()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = sluicev1beta1.AddToScheme(scheme)
	remote, err := testenv.Start(scheme)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = remote.Stop() })
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := remote.WriteAdminKubeconfig(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return remote, data
}

func kubeConfigSecret(t *testing.T, ns, name string, data []byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{"value": data}}
	if err := env.Client.Create(context.Background(), s); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		g := NewWithT(t)
		g.Expect(env.Client.Update(context.Background(), s)).To(Succeed())
	}
}

// TestGitSync_RemoteCluster: a GitSync in the management cluster applies
// to another control plane through spec.kubeConfig, and nothing to its own;
// a kubeconfig with an exec plugin put in the Secret later is refused, the
// reason says why, and nothing is pruned in the remote cluster.
func TestGitSync_RemoteCluster(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	remote, kubeconfig := startRemote(t)
	ns := namespace(t)
	remoteNS, err := remote.Namespace(ctx, "production")
	g.Expect(err).NotTo(HaveOccurred())

	r := newGitServer(t, "", "").newRepo(t, "fleet")
	r.write("initial", map[string]string{"config.yaml": configMapYAML("settings", "production")})
	kubeConfigSecret(t, ns, "production-kubeconfig", kubeconfig)
	newGitSync(t, ns, "apps", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.TargetNamespace = remoteNS
		gs.Spec.KubeConfig = &sluicev1beta1.GitSyncKubeConfig{SecretRef: sluicev1beta1.GitSyncKubeConfigSecretRef{Name: "production-kubeconfig"}}
	})
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "apps")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	cm := &corev1.ConfigMap{}
	g.Expect(remote.Client.Get(ctx, client.ObjectKey{Namespace: remoteNS, Name: "settings"}, cm)).To(Succeed())
	g.Expect(cm.Data["value"]).To(Equal("production"))
	g.Expect(cm.Labels).To(HaveKeyWithValue(sluicev1beta1.GitSyncNameLabel, "apps"))
	g.Expect(cm.Labels).To(HaveKeyWithValue(sluicev1beta1.GitSyncNamespaceLabel, ns))
	// The source annotations are written in the cluster applied to.
	g.Eventually(func(g Gomega) {
		g.Expect(remote.Client.Get(ctx, client.ObjectKey{Namespace: remoteNS, Name: "settings"}, cm)).To(Succeed())
		g.Expect(cm.Annotations).To(HaveKeyWithValue(sluicev1beta1.GitSyncRevisionAnnotation, getGitSync(g, ns, "apps").Status.LastAppliedRevision))
		g.Expect(cm.Annotations).To(HaveKeyWithValue(sluicev1beta1.GitSyncContentHashAnnotation, revision.ConfigMapChecksum(cm)))
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	// The management cluster got nothing (the namespace does not even exist there).
	err = env.Client.Get(ctx, client.ObjectKey{Namespace: remoteNS, Name: "settings"}, &corev1.ConfigMap{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "applied to the management cluster: %v", err)

	// A rotated Secret with an exec plugin, and a commit removing the ConfigMap.
	execConfig := strings.Replace(string(kubeconfig), "users:\n", "users:\n- name: plugin\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [-c, 'touch /tmp/pwned']\n", 1)
	g.Expect(execConfig).NotTo(Equal(string(kubeconfig)))
	kubeConfigSecret(t, ns, "production-kubeconfig", []byte(execConfig))
	r.write("remove", map[string]string{"config.yaml": configMapYAML("other", "x")})
	g.Eventually(func(g Gomega) {
		gs := getGitSync(g, ns, "apps")
		g.Expect(gs.Status.LastFailureReason).To(Equal(gitsync.ReasonKubeConfigFailed))
		g.Expect(gs.Status.LastFailureMessage).To(ContainSubstring(`user "plugin" uses an exec plugin (/bin/sh)`))
		g.Expect(gs.Status.LastFailureMessage).NotTo(ContainSubstring("BEGIN"), "no key material in status")
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	g.Expect(remote.Client.Get(ctx, client.ObjectKey{Namespace: remoteNS, Name: "settings"}, &corev1.ConfigMap{})).To(Succeed(), "nothing is pruned with a refused kubeconfig")
	_, statErr := os.Stat("/tmp/pwned")
	g.Expect(os.IsNotExist(statErr)).To(BeTrue(), "the exec plugin ran")

	// The good kubeconfig back: the new revision is applied there and the ConfigMap pruned.
	kubeConfigSecret(t, ns, "production-kubeconfig", kubeconfig)
	g.Eventually(func(g Gomega) {
		err := remote.Client.Get(ctx, client.ObjectKey{Namespace: remoteNS, Name: "settings"}, &corev1.ConfigMap{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
		g.Expect(remote.Client.Get(ctx, client.ObjectKey{Namespace: remoteNS, Name: "other"}, &corev1.ConfigMap{})).To(Succeed())
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
}

// TestRemoteConfig_Refuses: every way a kubeconfig can make the controller
// run a program or read its own files is refused, naming the user or
// cluster; inline credentials are accepted.
func TestRemoteConfig_Refuses(t *testing.T) {
	const base = `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://127.0.0.1:6443"%s}
users:
- name: admin
  user: {%s}
contexts:
- name: prod
  context: {cluster: prod, user: admin}
current-context: prod
`
	for _, tc := range []struct {
		name, cluster, user, want string
	}{
		{"exec", "", `exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}`, `user "admin" uses an exec plugin (aws)`},
		{"auth-provider", "", `auth-provider: {name: gcp}`, `user "admin" uses the auth-provider gcp`},
		{"token file", "", `tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token`, `user "admin" reads credentials from files`},
		{"client cert file", "", `client-certificate: /etc/tls.crt, client-key: /etc/tls.key`, `user "admin" reads credentials from files`},
		{"impersonation", "", `token: abc, as: system:admin`, `user "admin" impersonates`},
		{"CA file", `, certificate-authority: /etc/ca.crt`, `token: abc`, `cluster "prod" reads its CA from a file`},
		{"proxy", `, proxy-url: "http://10.0.0.1:3128"`, `token: abc`, `cluster "prod" sets a proxy-url`},
		{"not a kubeconfig", "", `: :`, `not a kubeconfig`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gitsync.RemoteConfig([]byte(fmt.Sprintf(base, tc.cluster, tc.user)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	cfg, err := gitsync.RemoteConfig([]byte(fmt.Sprintf(base, "", "token: s3cret")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || cfg.BearerToken != "s3cret" {
		t.Fatalf("inline kubeconfig: host %q", cfg.Host)
	}
	// Another user, not the current one, with an exec plugin: refused too.
	two := fmt.Sprintf(base, "", "token: s3cret") // the current user is fine
	two = strings.Replace(two, "users:\n", "users:\n- name: other\n  user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: gcloud}}\n", 1)
	if _, err := gitsync.RemoteConfig([]byte(two)); err == nil || !strings.Contains(err.Error(), `user "other"`) {
		t.Fatalf("an exec user outside the current context: %v", err)
	}
}
