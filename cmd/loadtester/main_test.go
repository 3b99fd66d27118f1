package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"

	"github.com/sluice-cd/sluice/pkg/loadtester"
)

func TestOptions(t *testing.T) {
	g := NewWithT(t)
	o := DefaultOptions()
	g.Expect(o.Validate()).To(Succeed())
	g.Expect(o.EnableShellTasks).To(BeFalse(), "no shell by default")

	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o.BindFlags(fs)
	g.Expect(fs.Parse([]string{"--enable-shell-tasks", "--shell-allow", "echo hi", "--shell-allow", "re:helm test .*", "--max-rate", "5", "--version"})).To(Succeed())
	g.Expect(o.ShellAllow).To(Equal(stringList{"echo hi", "re:helm test .*"}))
	g.Expect(o.MaxRate).To(Equal(5))
	g.Expect(o.ShowVersion).To(BeTrue())
	g.Expect(o.Validate()).To(Succeed())

	bad := DefaultOptions()
	bad.LogLevel, bad.GateStore, bad.MaxRate, bad.AuthFile, bad.TLSCertFile = "loud", "etcd", 0, "", "x"
	bad.ShellAllow = stringList{"echo"}
	err := bad.Validate()
	g.Expect(err).To(HaveOccurred())
	for _, s := range []string{"--log-level", "--gate-store", "--max-rate", "--auth-file", "--tls-key-file", "--enable-shell-tasks"} {
		g.Expect(err.Error()).To(ContainSubstring(s))
	}
}

func writeAuth(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(p, []byte("clients:\n- name: ci\n  token: 0123456789abcdef0123\n  namespaces: [test]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeAndShutdown(t *testing.T) {
	g := NewWithT(t)
	opts := DefaultOptions()
	opts.AuthFile = writeAuth(t)
	opts.GateNamespace = "sluice"
	noCluster := func() (*rest.Config, error) { return nil, errors.New("no cluster") }

	// configmap mode fails without a cluster; auto falls back to memory.
	opts.GateStore = "configmap"
	_, err := buildServer(t.Context(), opts, testr.New(t), noCluster)
	g.Expect(err).To(MatchError(ContainSubstring("no cluster")))
	opts.GateStore = "auto"
	srv, err := buildServer(t.Context(), opts, testr.New(t), noCluster)
	g.Expect(err).NotTo(HaveOccurred())
	defer srv.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, opts, testr.New(t), srv.Handler(), ln) }()
	url := "http://" + ln.Addr().String()
	g.Eventually(func() (int, error) {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}, 5*time.Second).Should(Equal(http.StatusOK))
	resp, err := http.Post(url+"/gate/check", "application/json", nil)
	g.Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))

	cancel()
	g.Eventually(done, 5*time.Second).Should(Receive(BeNil()))
}

func TestBuildServerRejectsBadFiles(t *testing.T) {
	g := NewWithT(t)
	opts := DefaultOptions()
	opts.GateStore = "memory"
	opts.AuthFile = filepath.Join(t.TempDir(), "missing.yaml")
	_, err := buildServer(t.Context(), opts, testr.New(t), nil)
	g.Expect(err).To(MatchError(ContainSubstring("auth file")))

	opts.AuthFile = writeAuth(t)
	opts.EnableShellTasks = true
	opts.ShellAllow = stringList{"re:("}
	_, err = buildServer(t.Context(), opts, testr.New(t), nil)
	g.Expect(err).To(MatchError(ContainSubstring("allow-list entry 0")))

	opts.ShellAllow = stringList{"echo hi"}
	s, err := buildServer(t.Context(), opts, testr.New(t), nil)
	g.Expect(err).NotTo(HaveOccurred())
	s.Close()
	var _ loadtester.GateStore = loadtester.NewMemoryGates()
}

func TestReloadAuth(t *testing.T) {
	g := NewWithT(t)
	opts := DefaultOptions()
	opts.AuthFile = writeAuth(t)
	opts.AuthReload = 20 * time.Millisecond
	data, err := os.ReadFile(opts.AuthFile)
	g.Expect(err).NotTo(HaveOccurred())
	f, err := loadtester.LoadAuthFile(opts.AuthFile)
	g.Expect(err).NotTo(HaveOccurred())
	auth, err := loadtester.NewAuthenticator(f, time.Minute, nil)
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go reloadAuth(ctx, opts, testr.New(t), auth, data)

	token := func(tok string) error {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		_, err := auth.Authenticate(r, nil)
		return err
	}
	g.Expect(token("0123456789abcdef0123")).To(Succeed())
	g.Expect(os.WriteFile(opts.AuthFile, []byte("clients: [{name: ci, token: rotated-0123456789abcdef, namespaces: [test]}]"), 0o600)).To(Succeed())
	g.Eventually(func() error { return token("rotated-0123456789abcdef") }, 2*time.Second).Should(Succeed())
	g.Expect(token("0123456789abcdef0123")).NotTo(Succeed())
}

// TestNoCredentialFlags: keys and tokens come from --auth-file (a mounted
// Secret) only; no flag takes a credential value.
func TestNoCredentialFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o := DefaultOptions()
	o.BindFlags(fs)
	secretish := regexp.MustCompile(`(?i)key|token|secret|password|hmac|credential`)
	fs.VisitAll(func(f *flag.Flag) {
		if secretish.MatchString(f.Name) && !strings.HasSuffix(f.Name, "-file") {
			t.Errorf("flag --%s looks like it takes a credential: read it from a file", f.Name)
		}
	})
}
