package testenv

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Graphite is a real Graphite-compatible server on 127.0.0.1: go-carbon
// receives points over carbon's plaintext protocol and writes whisper files
// (10 s resolution, one hour kept) in a temporary directory, and carbonapi
// serves graphite-web's render API over them. Both are built by `make tools`
// (hack/graphite.sh) and linked in bin/.
type Graphite struct {
	// URL is carbonapi's base URL, e.g. http://127.0.0.1:34567: the address
	// of a graphite MetricTemplate.
	URL string
	// Carbon is go-carbon's plaintext receiver, host:port.
	Carbon string

	dir   string
	procs []*exec.Cmd
}

// StartGraphite starts go-carbon and carbonapi and waits until carbonapi
// answers a render request.
func StartGraphite() (*Graphite, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for _, b := range []string{"go-carbon", "carbonapi"} {
		bins[b] = filepath.Join(root, "bin", b)
		if _, err := os.Stat(bins[b]); err != nil {
			return nil, fmt.Errorf("%s not found in bin/: run `make tools` (hack/graphite.sh): %w", b, err)
		}
	}
	dir, err := os.MkdirTemp("", "sluice-graphite-")
	if err != nil {
		return nil, err
	}
	g := &Graphite{dir: dir}
	addrs := make([]string, 3) // carbon receiver, carbonserver, carbonapi
	for i := range addrs {
		if addrs[i], err = freeLoopback(); err != nil {
			g.Stop()
			return nil, err
		}
	}
	g.Carbon, g.URL = addrs[0], "http://"+addrs[2]
	if err := g.writeConfig(addrs[0], addrs[1], addrs[2]); err != nil {
		g.Stop()
		return nil, err
	}
	if err := g.run(bins["go-carbon"], "go-carbon.log", "-config", filepath.Join(dir, "go-carbon.conf")); err != nil {
		g.Stop()
		return nil, err
	}
	if err := g.run(bins["carbonapi"], "carbonapi.log", "-config", filepath.Join(dir, "carbonapi.yaml")); err != nil {
		g.Stop()
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, cerr := net.DialTimeout("tcp", g.Carbon, time.Second)
		if cerr == nil {
			_ = c.Close()
			resp, err := http.Get(g.URL + "/render?target=sluice.ready&format=json") //nolint:noctx // loopback test server
			if err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return g, nil
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	logs := g.logs()
	g.Stop()
	return nil, fmt.Errorf("graphite did not become ready: %s", logs)
}

// writeConfig writes go-carbon's and carbonapi's configurations: only the
// plaintext TCP receiver and carbonserver on loopback, whisper files under
// dir, and a carbonserver scan every second so new metrics are found fast.
func (g *Graphite) writeConfig(carbon, carbonserver, apiAddr string) error {
	schemas := "[default]\npattern = .*\nretentions = 10s:1h\n"
	conf := fmt.Sprintf(`[common]
user = ""
max-cpu = 1
[whisper]
data-dir = %[1]q
schemas-file = %[2]q
enabled = true
workers = 1
[cache]
max-size = 1000000
write-strategy = "max"
[udp]
enabled = false
[tcp]
listen = %[3]q
enabled = true
[pickle]
enabled = false
[carbonlink]
enabled = false
[grpc]
enabled = false
[tags]
enabled = false
[carbonserver]
listen = %[4]q
enabled = true
buckets = 10
max-globs = 100
metrics-as-counters = false
read-timeout = "60s"
write-timeout = "60s"
scan-frequency = "1s"
# Tests send a metric and query it at once: no cached "not found".
query-cache-enabled = false
find-cache-enabled = false
glob-cache-enabled = false
[dump]
enabled = false
[pprof]
enabled = false
[[logging]]
logger = ""
file = %[5]q
level = "warn"
encoding = "json"
`, filepath.Join(g.dir, "whisper"), filepath.Join(g.dir, "schemas.conf"), carbon, carbonserver, filepath.Join(g.dir, "go-carbon.log"))
	api := fmt.Sprintf(`listen: %[1]q
concurency: 20
cache: {type: "null"}
upstreams:
  # The top-level-domain cache would remember, for minutes, that no backend
  # had a metric a test had not sent yet.
  tldCacheDisabled: true
  buckets: 10
  timeouts: {find: "2s", render: "10s", connect: "200ms"}
  backendsv2:
    backends:
      - groupName: go-carbon
        protocol: carbonapi_v3_pb
        lbMethod: broadcast
        maxTries: 3
        timeouts: {find: "2s", render: "10s", connect: "200ms"}
        servers: ["http://%[2]s"]
logger:
  - {logger: "", file: "stderr", level: "warn", encoding: "console"}
`, apiAddr, carbonserver)
	for name, content := range map[string]string{"schemas.conf": schemas, "go-carbon.conf": conf, "carbonapi.yaml": api} {
		if err := os.WriteFile(filepath.Join(g.dir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(g.dir, "whisper"), 0o700)
}

func (g *Graphite) run(bin, logName string, args ...string) error {
	log, err := os.OpenFile(filepath.Join(g.dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = g.dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start %s: %w", filepath.Base(bin), err)
	}
	g.procs = append(g.procs, cmd)
	return nil
}

// Send writes points in carbon's plaintext protocol: one "path value
// timestamp" line each.
func (g *Graphite) Send(points ...string) error {
	c, err := net.DialTimeout("tcp", g.Carbon, 5*time.Second)
	if err != nil {
		return fmt.Errorf("failed to connect to go-carbon: %w", err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, strings.Join(points, "\n")+"\n"); err != nil {
		return fmt.Errorf("failed to send points to go-carbon: %w", err)
	}
	return nil
}

func (g *Graphite) logs() string {
	var b strings.Builder
	for _, n := range []string{"go-carbon.log", "carbonapi.log"} {
		data, _ := os.ReadFile(filepath.Join(g.dir, n))
		fmt.Fprintf(&b, "%s: %s\n", n, data)
	}
	return b.String()
}

// Stop stops both servers and removes their data.
func (g *Graphite) Stop() {
	for i := len(g.procs) - 1; i >= 0; i-- {
		cmd := g.procs[i]
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	g.procs = nil
	_ = os.RemoveAll(g.dir)
}
