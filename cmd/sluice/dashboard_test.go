package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDashboardOptions_Validate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "defaults", args: nil},
		{name: "tls", args: []string{"--tls-cert-file=/c", "--tls-key-file=/k"}},
		{name: "cert without key", args: []string{"--tls-cert-file=/c"}, wantErr: "--tls-cert-file and --tls-key-file go together"},
		{name: "oidc", args: []string{"--oidc-issuer-url=https://issuer.example.com", "--oidc-client-id=sluice"}},
		{name: "oidc without client", args: []string{"--oidc-issuer-url=https://issuer.example.com"}, wantErr: "--oidc-issuer-url and --oidc-client-id go together"},
		{name: "oidc over http", args: []string{"--oidc-issuer-url=http://issuer.example.com", "--oidc-client-id=sluice"}, wantErr: "must be an https:// URL"},
		{name: "log level", args: []string{"--log-level=loud"}, wantErr: "--log-level must be"},
		{name: "no address", args: []string{"--bind-address="}, wantErr: "--bind-address must not be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			o := &dashboardOptions{}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			o.bindFlags(fs)
			g.Expect(fs.Parse(tc.args)).To(Succeed())
			err := o.validate()
			if tc.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
		})
	}
	g := NewWithT(t)
	g.Expect(splitList(" a.example.com, ,b ")).To(Equal([]string{"a.example.com", "b"}))
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice-dashboard"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestRunDashboard_ServesTLSAuthenticatesAndImpersonates runs `sluice
// dashboard` over HTTPS against the real API server. Its own identity here
// is the admin, so a caller's 403 shows the call was made as the caller.
func TestRunDashboard_ServesTLSAuthenticatesAndImpersonates(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	ns, err := env.Namespace(ctx, "dashboard")
	g.Expect(err).NotTo(HaveOccurred())
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	o := &dashboardOptions{BindAddress: freeAddr(t), HealthAddress: freeAddr(t), TLSCertFile: certFile, TLSKeyFile: keyFile,
		LogLevel: "info", LogEncoding: "json"}
	g.Expect(o.validate()).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- runDashboard(ctx, o, env.Config, logr.Discard()) }()
	defer func() {
		cancel()
		g.Expect(<-done).To(Succeed())
	}()

	g.Eventually(func() (int, error) { code, _, err := get("http://" + o.HealthAddress + "/readyz"); return code, err }).
		Should(Equal(http.StatusOK))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	do := func(path, token string) int {
		req, err := http.NewRequest(http.MethodGet, "https://"+o.BindAddress+path, nil)
		g.Expect(err).NotTo(HaveOccurred())
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	g.Eventually(func() int { return do("/", "") }).Should(Equal(http.StatusUnauthorized))

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nobody"}}
	g.Expect(env.Client.Create(ctx, sa)).To(Succeed())
	tr := &authenticationv1.TokenRequest{}
	g.Expect(env.Client.SubResource("token").Create(ctx, sa, tr)).To(Succeed())
	g.Expect(do("/api/session", tr.Status.Token)).To(Equal(http.StatusOK))
	g.Expect(do("/api/canaries/"+ns+"/none", tr.Status.Token)).To(Equal(http.StatusForbidden), "the admin would get 404")
}
