package testenv

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// InfluxDB is a real InfluxDB OSS 1.8 server on 127.0.0.1 (bin/influxd,
// built by `make tools`, hack/influxdb.sh) serving the Flux query API
// (/api/v2/query) with authentication on, its data in a temporary directory.
// InfluxDB 1.8 takes `Authorization: Token <user>:<password>` on the v2 API
// and ignores the org; a bucket is "<database>/<retention policy>".
type InfluxDB struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:34567.
	URL string
	// Token is the admin's token for the v2 API: "<user>:<password>".
	Token string

	user, password string
	dir            string
	cmd            *exec.Cmd
}

// StartInfluxDB starts the server, creates its admin user (the first user,
// which InfluxDB lets anyone create) and waits until it answers.
func StartInfluxDB() (*InfluxDB, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(root, "bin", "influxd")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("influxd not found in bin/: run `make tools` (hack/influxdb.sh): %w", err)
	}
	dir, err := os.MkdirTemp("", "sluice-influxdb-")
	if err != nil {
		return nil, err
	}
	i := &InfluxDB{dir: dir, user: "admin", password: "sluice-influx-passw0rd"}
	i.Token = i.user + ":" + i.password
	httpAddr, err := freeLoopback()
	if err != nil {
		i.Stop()
		return nil, err
	}
	rpcAddr, err := freeLoopback()
	if err != nil {
		i.Stop()
		return nil, err
	}
	i.URL = "http://" + httpAddr
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = %[1]q
[meta]
  dir = %[2]q
[data]
  dir = %[3]q
  wal-dir = %[4]q
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = %[5]q
  auth-enabled = true
  flux-enabled = true
  log-enabled = false
[continuous_queries]
  enabled = false
`, rpcAddr, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpAddr)
	if err := os.WriteFile(filepath.Join(dir, "influxdb.conf"), []byte(conf), 0o600); err != nil {
		i.Stop()
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(dir, "influxd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		i.Stop()
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(bin, "-config", filepath.Join(dir, "influxdb.conf"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		i.Stop()
		return nil, fmt.Errorf("failed to start influxd: %w", err)
	}
	i.cmd = cmd
	// Flux's standard library makes start-up take seconds on a busy machine.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(i.URL + "/ping") //nolint:noctx // loopback test server
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				if err := i.influxQL("CREATE USER " + i.user + " WITH PASSWORD '" + i.password + "' WITH ALL PRIVILEGES"); err != nil {
					i.Stop()
					return nil, err
				}
				return i, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "influxd.log"))
	i.Stop()
	return nil, fmt.Errorf("influxd did not become ready: %s", data)
}

// influxQL runs an InfluxQL statement as the admin (or anonymously before
// the admin exists).
func (i *InfluxDB) influxQL(q string) error {
	return i.post("/query", "application/x-www-form-urlencoded", url.Values{"q": {q}}.Encode())
}

// CreateDatabase creates a database; its bucket is "<name>/autogen".
func (i *InfluxDB) CreateDatabase(name string) error {
	return i.influxQL(fmt.Sprintf("CREATE DATABASE %q", name))
}

// Write writes line-protocol lines (timestamps in seconds) to a database.
func (i *InfluxDB) Write(db string, lines ...string) error {
	return i.post("/write?precision=s&db="+url.QueryEscape(db), "text/plain; charset=utf-8", strings.Join(lines, "\n"))
}

func (i *InfluxDB) post(path, ctype, body string) error {
	req, err := http.NewRequest(http.MethodPost, i.URL+path, strings.NewReader(body)) //nolint:noctx // loopback test server
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	req.SetBasicAuth(i.user, i.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("influxdb %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 || strings.Contains(string(b), `"error"`) {
		return fmt.Errorf("influxdb %s answered %d: %s", path, resp.StatusCode, b)
	}
	return nil
}

// Stop stops the server and removes its data.
func (i *InfluxDB) Stop() {
	if i.cmd != nil && i.cmd.Process != nil {
		_ = i.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = i.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = i.cmd.Process.Kill()
			<-done
		}
		i.cmd = nil
	}
	_ = os.RemoveAll(i.dir)
}
