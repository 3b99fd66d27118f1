package testenv

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	helmregistry "helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// Chart describes a test chart: files by path relative to the chart
// directory (templates/x.yaml, crds/y.yaml, values.schema.json) and its
// default values.
type Chart struct {
	Name, Version string
	Values        map[string]any
	Files         map[string]string
	// Dependencies are the dependencies of Chart.yaml (not vendored).
	Dependencies []*chart.Dependency
}

// Build makes the in-memory chart of c, as Helm's loader would.
func (c Chart) Build() (*chart.Chart, error) {
	ch := &chart.Chart{Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: c.Name, Version: c.Version, Type: "application", Dependencies: c.Dependencies}, Values: c.Values}
	if c.Values != nil {
		raw, err := yaml.Marshal(c.Values)
		if err != nil {
			return nil, err
		}
		ch.Raw = append(ch.Raw, &common.File{Name: "values.yaml", Data: raw})
	}
	for name, data := range c.Files {
		f := &common.File{Name: name, Data: []byte(data)}
		switch {
		case strings.HasPrefix(name, "templates/"):
			ch.Templates = append(ch.Templates, f)
		case name == "values.schema.json":
			ch.Schema = []byte(data)
		default:
			ch.Files = append(ch.Files, f)
		}
	}
	return ch, nil
}

// Package writes c as a chart archive into dir with Helm's own packager and
// returns the archive's path.
func (c Chart) Package(dir string) (string, error) {
	ch, err := c.Build()
	if err != nil {
		return "", err
	}
	return chartutil.Save(ch, dir)
}

// WriteDir writes c as a chart directory at dir (Chart.yaml, values.yaml, files).
func (c Chart) WriteDir(dir string) error {
	meta, err := yaml.Marshal(chart.Metadata{APIVersion: "v2", Name: c.Name, Version: c.Version, Dependencies: c.Dependencies})
	if err != nil {
		return err
	}
	files := map[string]string{"Chart.yaml": string(meta)}
	if c.Values != nil {
		v, err := yaml.Marshal(c.Values)
		if err != nil {
			return err
		}
		files["values.yaml"] = string(v)
	}
	for k, v := range c.Files {
		files[k] = v
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// HelmRepo is an HTTP Helm repository on loopback serving the archives of
// a directory with an index.yaml made by Helm's repo package.
type HelmRepo struct {
	Dir string
	URL string
	// Requests counts the requests by path.
	mu       sync.Mutex
	requests map[string]int
	// Fail, when set, answers every request with this status code.
	Fail atomic.Int32
	// User and Password, when set, are required (HTTP basic auth).
	User, Password string
	srv            *httptest.Server
}

// StartHelmRepo serves dir (a new temporary directory when empty).
func StartHelmRepo(dir string) (*HelmRepo, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "sluice-helmrepo-")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	r := &HelmRepo{Dir: dir, requests: map[string]int{}}
	files := http.FileServer(http.Dir(dir))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests[req.URL.Path]++
		r.mu.Unlock()
		if code := r.Fail.Load(); code != 0 {
			http.Error(w, "failing on purpose", int(code))
			return
		}
		if r.User != "" {
			u, p, ok := req.BasicAuth()
			if !ok || u != r.User || p != r.Password {
				w.Header().Set("WWW-Authenticate", `Basic realm="charts"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		files.ServeHTTP(w, req)
	}))
	r.URL = r.srv.URL
	return r, nil
}

// Add packages the charts into the repository and re-indexes it.
func (r *HelmRepo) Add(charts ...Chart) error {
	for _, c := range charts {
		if _, err := c.Package(r.Dir); err != nil {
			return fmt.Errorf("failed to package chart %s %s: %w", c.Name, c.Version, err)
		}
	}
	return r.Reindex()
}

// Reindex writes index.yaml with Helm's repo.IndexDirectory (relative URLs, digests).
func (r *HelmRepo) Reindex() error {
	idx, err := repo.IndexDirectory(r.Dir, "")
	if err != nil {
		return fmt.Errorf("failed to index %s: %w", r.Dir, err)
	}
	idx.SortEntries()
	return idx.WriteFile(filepath.Join(r.Dir, "index.yaml"), 0o600)
}

// Requests is how many requests asked for path.
func (r *HelmRepo) Requests(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[path]
}

// Close stops the server.
func (r *HelmRepo) Close() { r.srv.Close() }

// OCIRegistry is an OCI registry on loopback (go-containerregistry's, in process).
type OCIRegistry struct {
	// Host is 127.0.0.1:<port>.
	Host string
	srv  *httptest.Server
}

// StartOCIRegistry starts an empty registry.
func StartOCIRegistry() *OCIRegistry {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	return &OCIRegistry{Host: strings.TrimPrefix(srv.URL, "http://"), srv: srv}
}

// Push packages c and pushes it with Helm's registry client to
// <host>/<repository>/<name>:<version>, and returns the oci:// reference
// without the tag.
func (o *OCIRegistry) Push(repository string, c Chart) (string, error) {
	dir, err := os.MkdirTemp("", "sluice-ocichart-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	p, err := c.Package(dir)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	rc, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP(), helmregistry.ClientOptCredentialsFile(filepath.Join(dir, "config.json")))
	if err != nil {
		return "", err
	}
	ref := fmt.Sprintf("%s/%s/%s", o.Host, repository, c.Name)
	if _, err := rc.Push(data, ref+":"+c.Version); err != nil {
		return "", fmt.Errorf("failed to push %s:%s: %w", ref, c.Version, err)
	}
	return "oci://" + ref, nil
}

// Close stops the registry.
func (o *OCIRegistry) Close() { o.srv.Close() }
