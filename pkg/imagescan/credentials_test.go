package imagescan

import (
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func dockerConfigSecret(config string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: "apps"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(config)},
	}
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// authOf resolves the login the credentials give host.
func authOf(t *testing.T, c *Credentials, host string) *authn.AuthConfig {
	t.Helper()
	a, err := c.authenticator(host).Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCredentials_HostMatching(t *testing.T) {
	g := NewWithT(t)
	cfg := fmt.Sprintf(`{"auths": {
		"https://index.docker.io/v1/": {"auth": %q},
		"ghcr.io": {"username": "octo", "password": "ghp-token"},
		"https://registry.example.com:5000/v2/": {"auth": %q},
		"Quay.IO": {"identitytoken": "quay-refresh"}
	}}`, basicAuth("hubuser", "hub-pass"), basicAuth("ex", "ex:pass:with:colons"))
	c, err := CredentialsFromSecret(dockerConfigSecret(cfg))
	g.Expect(err).NotTo(HaveOccurred())

	// Every Docker Hub alias finds the login docker writes under its v1 URL.
	for _, host := range []string{"index.docker.io", "docker.io", "registry-1.docker.io", "registry.hub.docker.com"} {
		g.Expect(authOf(t, c, host)).To(Equal(&authn.AuthConfig{Username: "hubuser", Password: "hub-pass"}), host)
	}
	g.Expect(authOf(t, c, "ghcr.io")).To(Equal(&authn.AuthConfig{Username: "octo", Password: "ghp-token"}))
	// Scheme and path are ignored, the port is not; the password keeps its colons.
	g.Expect(authOf(t, c, "registry.example.com:5000")).To(Equal(&authn.AuthConfig{Username: "ex", Password: "ex:pass:with:colons"}))
	g.Expect(authOf(t, c, "registry.example.com")).To(Equal(&authn.AuthConfig{}), "another port is another registry")
	g.Expect(authOf(t, c, "quay.io")).To(Equal(&authn.AuthConfig{IdentityToken: "quay-refresh"}), "hosts compare case-insensitively")
	g.Expect(authOf(t, c, "gcr.io")).To(Equal(&authn.AuthConfig{}), "no login: anonymous")
	g.Expect(authOf(t, nil, "ghcr.io")).To(Equal(&authn.AuthConfig{}), "no credentials: anonymous")

	// Printing the credentials (or a request holding them) shows hosts only.
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", Request{Credentials: c}), fmt.Sprintf("%#v", Request{Credentials: c})} {
		g.Expect(s).NotTo(ContainSubstring("hub-pass"))
		g.Expect(s).NotTo(ContainSubstring("ghp-token"))
		g.Expect(s).NotTo(ContainSubstring(basicAuth("hubuser", "hub-pass")))
	}
	g.Expect(c.String()).To(Equal("credentials for docker.io, ghcr.io, quay.io, registry.example.com:5000"))
}

func TestCredentials_ExactKeyWins(t *testing.T) {
	g := NewWithT(t)
	// Both keys name Docker Hub; the one that is exactly the host wins
	// whatever the map order.
	cfg := fmt.Sprintf(`{"auths": {"https://index.docker.io/v1/": {"auth": %q}, "docker.io": {"auth": %q}}}`,
		basicAuth("old", "old-pass"), basicAuth("new", "new-pass"))
	for range 5 {
		c, err := ParseDockerConfigJSON([]byte(cfg))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(authOf(t, c, "index.docker.io").Username).To(Equal("new"))
	}
}

func TestCredentials_Invalid(t *testing.T) {
	const secretPass = "s3cret-value-xyz"
	tests := []struct {
		name   string
		secret *corev1.Secret
		want   string
	}{
		{name: "wrong type", secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: "apps"}, Type: corev1.SecretTypeOpaque},
			want: `Secret apps/pull is of type "Opaque"; it must be of type kubernetes.io/dockerconfigjson`},
		{name: "missing key", secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: "apps"}, Type: corev1.SecretTypeDockerConfigJson},
			want: "Secret apps/pull has no key .dockerconfigjson"},
		{name: "not JSON", secret: dockerConfigSecret(`{"auths": {"ghcr.io": {"password": "` + secretPass), want: "is not valid JSON"},
		{name: "auth not base64", secret: dockerConfigSecret(`{"auths": {"ghcr.io": {"auth": "` + secretPass + `!"}}}`), want: `the auth of "ghcr.io" is not base64`},
		{name: "auth without colon", secret: dockerConfigSecret(`{"auths": {"ghcr.io": {"auth": "` + base64.StdEncoding.EncodeToString([]byte(secretPass)) + `"}}}`),
			want: `the auth of "ghcr.io" is not base64 of user:password`},
		{name: "empty key", secret: dockerConfigSecret(`{"auths": {"https://": {"password": "` + secretPass + `"}}}`), want: "names no registry host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c, err := CredentialsFromSecret(tt.secret)
			g.Expect(c).To(BeNil())
			g.Expect(ReasonOf(err)).To(Equal(ReasonInvalidCredentials), "%v", err)
			g.Expect(err.Error()).To(ContainSubstring(tt.want))
			g.Expect(err.Error()).NotTo(ContainSubstring(secretPass))
			g.Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
		})
	}
	g := NewWithT(t)
	c, err := CredentialsFromSecret(nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c).To(BeNil(), "no Secret: anonymous")
}
