package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"sigs.k8s.io/yaml"
)

// LoadTesterClient is one entry of the load tester's auth file.
type LoadTesterClient struct {
	Name       string   `json:"name"`
	HMACKey    string   `json:"hmacKey,omitempty"`
	Token      string   `json:"token,omitempty"`
	Namespaces []string `json:"namespaces"`
	// Scopes are "check" (the default) and "operate" (open and close gates).
	Scopes []string `json:"scopes,omitempty"`
}

// LoadTester is a running cmd/loadtester, a child process of the stack,
// storing its gates as ConfigMaps in ManagerNamespace.
type LoadTester struct {
	*Process
	// URL is its base URL, e.g. http://127.0.0.1:34567.
	URL string
}

var (
	ltOnce sync.Once
	ltBin  string
	ltErr  error
)

// buildLoadTester compiles ./cmd/loadtester once per process, next to the
// sluice binary (CleanupBuild removes both).
func buildLoadTester(root string) (string, error) {
	ltOnce.Do(func() {
		if _, err := buildSluice(root); err != nil {
			ltErr = err
			return
		}
		bin := filepath.Join(buildDir, "loadtester")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/loadtester")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			ltErr = fmt.Errorf("failed to build cmd/loadtester: %w: %s", err, out)
			return
		}
		ltBin = bin
	})
	return ltBin, ltErr
}

// StartLoadTester starts the load tester with the given clients and waits
// for /healthz.
func (s *Stack) StartLoadTester(ctx context.Context, clients ...LoadTesterClient) (*LoadTester, error) {
	bin, err := buildLoadTester(s.Root)
	if err != nil {
		return nil, err
	}
	auth, err := yaml.Marshal(map[string]any{"clients": clients})
	if err != nil {
		return nil, err
	}
	authFile := filepath.Join(s.Dir, "loadtester-auth.yaml")
	if err := os.WriteFile(authFile, auth, 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := startProcess(s.Dir, "loadtester", bin, []string{
		"--listen-address=" + addr,
		"--auth-file=" + authFile,
		"--gate-store=configmap",
		"--gate-namespace=" + ManagerNamespace,
		"--log-encoding=console",
	}, []string{"KUBECONFIG=" + s.Kubeconfig})
	if err != nil {
		return nil, err
	}
	s.track(p)
	lt := &LoadTester{Process: p, URL: "http://" + addr}
	err = poll(ctx, 30*time.Second, func() (bool, error) {
		if ended, err := p.Exited(); ended {
			return false, fmt.Errorf("the load tester exited: %w", exitError(err))
		}
		resp, err := http.Get(lt.URL + "/healthz") //nolint:noctx // loopback, bounded by poll
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return nil, fmt.Errorf("the load tester did not start: %w; log: %s", err, p.Tail(4096))
	}
	return lt, nil
}

// Call POSTs the payload {name, namespace} of a Canary to path with a
// bearer token and returns the status code.
func (lt *LoadTester) Call(ctx context.Context, path, token, namespace, name string) (int, error) {
	body, err := json.Marshal(map[string]string{"name": name, "namespace": namespace})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, lt.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}
