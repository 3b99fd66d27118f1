package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// GiteaTokenScopes are the scopes of Gitea.Token: repositories (creating
// them, pushing, commit statuses), the user, and organisations (CreateRepo
// with another owner creates the organisation).
var GiteaTokenScopes = []string{"write:repository", "write:user", "write:organization"}

// giteaMaxBody bounds every response body read from Gitea.
const giteaMaxBody = 4 << 20

// Gitea is a real Gitea server (bin/gitea, built from the Go module proxy by
// hack/gitea.sh) on 127.0.0.1, with a SQLite database in a temporary
// directory, one admin user and an access token for it.
type Gitea struct {
	// URL is the server's base URL without a trailing slash, e.g.
	// http://127.0.0.1:34567; clone URLs are URL/<owner>/<repo>.git.
	URL string
	// APIURL is URL + "/api/v1".
	APIURL string
	// User and Password are the admin's; Git over HTTP takes them as basic
	// auth, and so does the API.
	User     string
	Password string
	// Token is an access token of User with GiteaTokenScopes, sent as
	// `Authorization: token <Token>`.
	Token string
	// StartupTime is how long the server took from exec to answering the API.
	StartupTime time.Duration

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	dir    string
	bin    string
	client *http.Client
}

// GiteaRepo is a repository created by Gitea.CreateRepo.
type GiteaRepo struct {
	Owner string
	Name  string
	// CloneURL is the HTTP clone URL without credentials (the repository is
	// public, so clones need none).
	CloneURL string
	// PushURL is CloneURL with the admin's user and password in it, for
	// pushing with git or go-git.
	PushURL string
}

// GiteaCommitStatus is a commit status as Gitea's API returns it. Gitea
// calls the state "status" in responses and "state" in requests.
type GiteaCommitStatus struct {
	ID          int64     `json:"id"`
	State       string    `json:"status"`
	TargetURL   string    `json:"target_url"`
	Description string    `json:"description"`
	Context     string    `json:"context"`
	Creator     giteaUser `json:"creator"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

type giteaUser struct {
	Login string `json:"login"`
}

// StartGitea starts Gitea on a free loopback port, waits until its API
// answers, creates the admin user (the binary's `admin user create`) and an
// access token (the API, with basic auth).
func StartGitea() (*Gitea, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(root, "bin", "gitea")
	static := filepath.Join(root, "bin", "gitea-static")
	for _, p := range []string{bin, filepath.Join(static, "options")} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("gitea not found at %s: run `make tools` (hack/gitea.sh): %w", p, err)
		}
	}
	dir, err := os.MkdirTemp("", "sluice-gitea-")
	if err != nil {
		return nil, err
	}
	g := &Gitea{dir: dir, bin: bin, User: "sluice", Password: randomHex(16), client: &http.Client{Timeout: 30 * time.Second}}
	addr, err := freeLoopback()
	if err != nil {
		g.Stop()
		return nil, err
	}
	g.URL = "http://" + addr
	g.APIURL = g.URL + "/api/v1"
	if err := g.writeConfig(addr, static); err != nil {
		g.Stop()
		return nil, err
	}
	if err := g.start(); err != nil {
		g.Stop()
		return nil, err
	}
	if _, err := g.command("admin", "user", "create", "--username", g.User, "--password", g.Password,
		"--email", g.User+"@localhost", "--admin", "--must-change-password=false"); err != nil {
		g.Stop()
		return nil, err
	}
	if g.Token, err = g.NewToken("sluice-test", GiteaTokenScopes...); err != nil {
		g.Stop()
		return nil, err
	}
	return g, nil
}

// writeConfig writes app.ini: everything under g.dir, nothing reached
// outside the machine, and settings that keep start-up and requests fast.
func (g *Gitea) writeConfig(addr, static string) error {
	host, port, _ := strings.Cut(addr, ":")
	current, err := user.Current()
	if err != nil {
		return fmt.Errorf("failed to look up the current user for Gitea's RUN_USER: %w", err)
	}
	// Gitea refuses to run as root unless told; test containers often are root.
	asRoot := ""
	if os.Getuid() == 0 {
		asRoot = "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true\n"
	}
	ini := fmt.Sprintf(`APP_NAME = sluice-test
RUN_MODE = prod
RUN_USER = %[1]s
WORK_PATH = %[2]s
%[3]s
[server]
PROTOCOL = http
HTTP_ADDR = %[4]s
HTTP_PORT = %[5]s
DOMAIN = %[4]s
ROOT_URL = http://%[6]s/
APP_DATA_PATH = %[2]s/data
STATIC_ROOT_PATH = %[7]s
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = %[2]s/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = %[2]s/repositories
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = %[8]s
INTERNAL_TOKEN = %[9]s
; bcrypt at its cheapest cost: Git over HTTP checks the password on every
; request, and the tests' passwords are random and thrown away.
PASSWORD_HASH_ALGO = bcrypt$4
; Webhooks to a receiver on this machine (GitSync's push receiver in tests).
ALLOWED_HOST_LIST = loopback

[oauth2]
ENABLED = false

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false

[mailer]
ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[queue]
TYPE = channel

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[cron]
ENABLED = false

[cron.update_checker]
ENABLED = false

[actions]
ENABLED = false

[packages]
ENABLED = false

[log]
MODE = console
LEVEL = Info
ROOT_PATH = %[2]s/log
`, current.Username, g.dir, asRoot, host, port, addr, static, randomHex(32), randomHex(32))
	return os.WriteFile(filepath.Join(g.dir, "app.ini"), []byte(ini), 0o600)
}

// start runs `gitea web` and waits until GET /api/v1/version answers.
func (g *Gitea) start() error {
	log, err := os.OpenFile(filepath.Join(g.dir, "gitea.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	begin := time.Now()
	cmd := exec.Command(g.bin, "web", "--config", filepath.Join(g.dir, "app.ini"), "--work-path", g.dir)
	cmd.Env = g.env()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start gitea: %w", err)
	}
	g.cmd, g.exited = cmd, make(chan struct{})
	exited := g.exited
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("gitea exited during start-up: %s", g.Logs())
		default:
		}
		resp, err := g.client.Get(g.APIURL + "/version") //nolint:noctx // loopback test server
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, giteaMaxBody))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				g.StartupTime = time.Since(begin)
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("gitea did not answer on %s within 90s: %s", g.URL, g.Logs())
}

// env is the environment of Gitea's processes: HOME in the temporary
// directory, so no user configuration of git or Gitea is read.
func (g *Gitea) env() []string {
	return append(os.Environ(), "HOME="+filepath.Join(g.dir, "home"), "GIT_CONFIG_NOSYSTEM=1", "GITEA_WORK_DIR="+g.dir)
}

// command runs a gitea CLI command against this server's configuration.
func (g *Gitea) command(args ...string) (string, error) {
	full := append([]string{"--config", filepath.Join(g.dir, "app.ini"), "--work-path", g.dir}, args...)
	cmd := exec.Command(g.bin, full...)
	cmd.Env = g.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		// The arguments may hold the password: name the command only.
		return "", fmt.Errorf("gitea %s: %w\n%s", strings.Join(args[:min(len(args), 3)], " "), err, out)
	}
	return string(out), nil
}

// Logs returns what the server has written so far (for test failures).
func (g *Gitea) Logs() string {
	data, err := os.ReadFile(filepath.Join(g.dir, "gitea.log"))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return string(data)
}

// Stop stops the server and removes its data.
func (g *Gitea) Stop() {
	if g.cmd != nil {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
		case <-time.After(10 * time.Second):
			_ = g.cmd.Process.Kill()
			<-g.exited
		}
		g.cmd = nil
	}
	_ = os.RemoveAll(g.dir)
}

// NewToken creates another access token of the admin with the given scopes
// (e.g. "read:repository"), through the API with basic auth, and returns it.
func (g *Gitea) NewToken(name string, scopes ...string) (string, error) {
	body := map[string]any{"name": name, "scopes": scopes}
	var out struct {
		SHA1 string `json:"sha1"`
	}
	req, err := g.newRequest(http.MethodPost, "/users/"+url.PathEscape(g.User)+"/tokens", body)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(g.User, g.Password)
	if err := g.do(req, http.StatusCreated, &out); err != nil {
		return "", fmt.Errorf("failed to create access token %q: %w", name, err)
	}
	if out.SHA1 == "" {
		return "", fmt.Errorf("gitea returned no token for %q", name)
	}
	return out.SHA1, nil
}

// CreateRepo creates an empty public repository owner/name (no commits,
// default branch main). The owner is the admin (g.User) or an organisation,
// created when missing.
func (g *Gitea) CreateRepo(owner, name string) (*GiteaRepo, error) {
	path := "/user/repos"
	if owner != g.User {
		if err := g.ensureOrg(owner); err != nil {
			return nil, err
		}
		path = "/orgs/" + url.PathEscape(owner) + "/repos"
	}
	body := map[string]any{"name": name, "private": false, "auto_init": false, "default_branch": "main"}
	var out struct {
		CloneURL string `json:"clone_url"`
	}
	if err := g.API(http.MethodPost, path, body, http.StatusCreated, &out); err != nil {
		return nil, fmt.Errorf("failed to create repository %s/%s: %w", owner, name, err)
	}
	push, err := url.Parse(out.CloneURL)
	if err != nil {
		return nil, fmt.Errorf("gitea returned an invalid clone URL %q: %w", out.CloneURL, err)
	}
	push.User = url.UserPassword(g.User, g.Password)
	return &GiteaRepo{Owner: owner, Name: name, CloneURL: out.CloneURL, PushURL: push.String()}, nil
}

// ensureOrg creates organisation name unless it exists.
func (g *Gitea) ensureOrg(name string) error {
	err := g.API(http.MethodGet, "/orgs/"+url.PathEscape(name), nil, http.StatusOK, nil)
	var status *GiteaStatusError
	if err == nil || !errors.As(err, &status) || status.Code != http.StatusNotFound {
		return err
	}
	if err := g.API(http.MethodPost, "/orgs", map[string]any{"username": name, "visibility": "public"}, http.StatusCreated, nil); err != nil {
		return fmt.Errorf("failed to create organisation %s: %w", name, err)
	}
	return nil
}

// ListStatuses returns every commit status of sha in owner/repo (GET
// /repos/{owner}/{repo}/statuses/{sha}, all pages), oldest first. Gitea
// keeps each status posted, also several with the same context.
func (g *Gitea) ListStatuses(owner, repo, sha string) ([]GiteaCommitStatus, error) {
	var all []GiteaCommitStatus
	const limit = 50 // Gitea's maximum page size by default
	for page := 1; ; page++ {
		var batch []GiteaCommitStatus
		path := fmt.Sprintf("/repos/%s/%s/statuses/%s?limit=%d&page=%d", url.PathEscape(owner), url.PathEscape(repo), url.PathEscape(sha), limit, page)
		if err := g.API(http.MethodGet, path, nil, http.StatusOK, &batch); err != nil {
			return nil, fmt.Errorf("failed to list the statuses of %s in %s/%s: %w", sha, owner, repo, err)
		}
		all = append(all, batch...)
		if len(batch) < limit {
			break
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return all, nil
}

// GiteaStatusError is an API answer with an unexpected status code.
type GiteaStatusError struct {
	Method, Path string
	Code         int
	Body         string
}

func (e *GiteaStatusError) Error() string {
	return fmt.Sprintf("gitea %s %s: HTTP %d: %s", e.Method, e.Path, e.Code, e.Body)
}

// API sends a request to the API (path relative to APIURL) with the token,
// in as the JSON body when not nil, expects status want and decodes the
// answer into out when not nil.
func (g *Gitea) API(method, path string, in any, want int, out any) error {
	req, err := g.newRequest(method, path, in)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+g.Token)
	return g.do(req, want, out)
}

func (g *Gitea) newRequest(method, path string, in any) (*http.Request, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, g.APIURL+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

func (g *Gitea) do(req *http.Request, want int, out any) error {
	resp, err := g.client.Do(req)
	if err != nil {
		return fmt.Errorf("gitea %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, giteaMaxBody))
	if err != nil {
		return fmt.Errorf("gitea %s %s: reading the answer: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != want {
		return &GiteaStatusError{Method: req.Method, Path: req.URL.Path, Code: resp.StatusCode, Body: strings.TrimSpace(string(data))}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("gitea %s %s: decoding the answer: %w", req.Method, req.URL.Path, err)
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
