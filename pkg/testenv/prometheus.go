package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Prometheus is a real Prometheus server (the Debian package, made available
// as bin/prometheus by `make tools`) listening on 127.0.0.1, scraping its
// targets every second.
type Prometheus struct {
	URL  string
	cmd  *exec.Cmd
	dir  string
	bin  string
	addr string
}

// StartPrometheus starts Prometheus scraping the given host:port targets
// (path /metrics, labels kept as exposed) and waits until it is ready.
func StartPrometheus(targets ...string) (*Prometheus, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(root, "bin", "prometheus")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("prometheus not found at %s: run `make tools`: %w", bin, err)
	}
	dir, err := os.MkdirTemp("", "sluice-prometheus-")
	if err != nil {
		return nil, err
	}
	quoted := make([]string, len(targets))
	for i, t := range targets {
		quoted[i] = fmt.Sprintf("%q", t)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: test
    honor_labels: true
    static_configs:
      - targets: [%s]
`, strings.Join(quoted, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	addr, err := freeLoopback()
	if err != nil {
		return nil, err
	}
	p := &Prometheus{URL: "http://" + addr, dir: dir, bin: bin, addr: addr}
	if err := p.start(); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// start runs the server on p.addr with p.dir's configuration and data, and
// waits until it is ready.
func (p *Prometheus) start() error {
	log, err := os.OpenFile(filepath.Join(p.dir, "prometheus.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(p.bin,
		"--config.file="+filepath.Join(p.dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(p.dir, "data"),
		"--web.listen-address="+p.addr,
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start prometheus: %w", err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.URL + "/-/ready") //nolint:noctx // loopback test server
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Kill()
	data, _ := os.ReadFile(filepath.Join(p.dir, "prometheus.log"))
	return fmt.Errorf("prometheus did not become ready: %s", data)
}

// Kill stops the server as a crash would (SIGKILL), keeping its data and
// address for Restart: queries are refused until then.
func (p *Prometheus) Kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		p.cmd = nil
	}
}

// Restart starts a killed server again on the same address and data.
func (p *Prometheus) Restart() error {
	p.Kill()
	return p.start()
}

// Stop stops the server and removes its data.
func (p *Prometheus) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
		p.cmd = nil
	}
	_ = os.RemoveAll(p.dir)
}

func freeLoopback() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
