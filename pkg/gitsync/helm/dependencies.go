package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"

	chart "helm.sh/helm/v4/pkg/chart/v2"
)

// maxDependencies bounds the dependencies downloaded for one chart.
const maxDependencies = 32

// resolveDependencies does what `helm dependency build` does before a
// chart is packaged, in memory: every dependency of Chart.yaml that is not
// vendored in charts/ is downloaded from its repository (an HTTP(S) Helm
// repository or oci://), at the version Chart.lock pins when the chart
// has one, else the highest in the dependency's range. Helm's downloader
// package is not used: it reads repositories.yaml and the plugin getters of
// the controller's home; this uses GitSync's own fetchers, with their
// limits, and sends the credentials of spec.helm.chart.secretRef only to
// the host of the chart itself. A dependency's own dependencies must be
// vendored in its archive, as `helm dependency build` leaves them.
func (r *Renderer) resolveDependencies(ctx context.Context, c *chart.Chart, req Request) error {
	deps := c.Metadata.Dependencies
	if len(deps) == 0 {
		return nil
	}
	vendored := map[string]bool{}
	for _, sub := range c.Dependencies() {
		vendored[sub.Name()] = true
	}
	var missing []*chart.Dependency
	for _, d := range deps {
		if d != nil && !vendored[d.Name] {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if len(missing) > maxDependencies {
		return fmt.Errorf("chart %s %s has %d dependencies to download, more than %d: vendor them in charts/ with 'helm dependency build'",
			c.Name(), c.Metadata.Version, len(missing), maxDependencies)
	}
	locked, err := lockedVersions(c)
	if err != nil {
		return err
	}
	for _, d := range missing {
		sub, err := r.fetchDependency(ctx, d, locked[d.Name], req)
		if err != nil {
			return fmt.Errorf("chart %s %s: dependency %s (%s from %q): %w", c.Name(), c.Metadata.Version, d.Name, versionOrAny(d.Version), d.Repository, err)
		}
		if sub.Name() != d.Name {
			return fmt.Errorf("chart %s %s: dependency %s: the archive downloaded holds chart %s", c.Name(), c.Metadata.Version, d.Name, sub.Name())
		}
		c.AddDependency(sub)
	}
	return nil
}

// lockedVersions are the versions Chart.lock pins by dependency name (nil
// without a Chart.lock). As Helm, a Chart.lock that does not match
// Chart.yaml is refused rather than half honoured.
func lockedVersions(c *chart.Chart) (map[string]string, error) {
	if c.Lock == nil {
		return nil, nil
	}
	sum, err := lockDigest(c.Metadata.Dependencies, c.Lock.Dependencies)
	if err != nil || sum != c.Lock.Digest {
		return nil, fmt.Errorf("chart %s %s: the lock file (Chart.lock) is out of sync with the dependencies file (Chart.yaml): update it with 'helm dependency update'", c.Name(), c.Metadata.Version)
	}
	out := map[string]string{}
	for _, d := range c.Lock.Dependencies {
		if d != nil {
			out[d.Name] = d.Version
		}
	}
	return out, nil
}

// lockDigest is Helm's digest of Chart.lock (internal/resolver.HashReq):
// the sha256 of the JSON of the requirements and the locked dependencies.
func lockDigest(req, lock []*chart.Dependency) (string, error) {
	data, err := json.Marshal([2][]*chart.Dependency{req, lock})
	if err != nil {
		return "", fmt.Errorf("failed to hash the dependencies: %w", err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// fetchDependency downloads one dependency; version is the locked one, or
// empty for the dependency's range.
func (r *Renderer) fetchDependency(ctx context.Context, d *chart.Dependency, version string, req Request) (*chart.Chart, error) {
	if version == "" {
		version = d.Version
	}
	repo := d.Repository
	switch {
	case repo == "":
		return nil, fmt.Errorf("it is not vendored in charts/ and names no repository: vendor it with 'helm dependency build' before packaging")
	case strings.HasPrefix(repo, "@") || strings.HasPrefix(repo, "alias:"):
		return nil, fmt.Errorf("a repository named in Helm's repositories.yaml cannot be resolved by Sluice: use the repository's URL, or vendor the dependency in charts/ with 'helm dependency build'")
	case strings.HasPrefix(repo, "file://"):
		if req.Source.Path == "" {
			return nil, fmt.Errorf("a file:// dependency must be vendored in charts/ of a packaged chart ('helm dependency build' before 'helm package')")
		}
		f, err := loadPath(req.CheckoutDir, path.Join(req.Source.Path, strings.TrimPrefix(repo, "file://")))
		if err != nil {
			return nil, err
		}
		return f.chart, nil
	case strings.HasPrefix(repo, "oci://"):
		ref := strings.TrimSuffix(repo, "/") + "/" + d.Name
		f, err := r.fetchOCI(ctx, ref, version, r.credentialsFor(req, ociHost(ref)))
		if err != nil {
			return nil, err
		}
		return f.chart, nil
	case strings.HasPrefix(repo, "https://") || strings.HasPrefix(repo, "http://"):
		u, err := url.Parse(repo)
		if err != nil {
			return nil, fmt.Errorf("invalid repository URL: %w", err)
		}
		if u.Scheme == "http" && !isLoopback(u.Host) {
			return nil, fmt.Errorf("an http:// repository is only allowed on loopback: use https://")
		}
		f, err := r.fetchRepository(ctx, repo, d.Name, version, r.credentialsFor(req, u.Host))
		if err != nil {
			return nil, err
		}
		return f.chart, nil
	}
	return nil, fmt.Errorf("unsupported repository: an https:// Helm repository, oci:// or file:// is needed")
}

// credentialsFor returns the chart's credentials when host is the host of
// the chart itself (its repository or registry), else none: a dependency
// on another host must not receive them.
func (r *Renderer) credentialsFor(req Request, host string) *Credentials {
	if req.Credentials == nil {
		return nil
	}
	var own string
	switch {
	case req.Source.Repository != "":
		if u, err := url.Parse(req.Source.Repository); err == nil {
			own = u.Host
		}
	case req.Source.OCI != "":
		own = ociHost(req.Source.OCI)
	}
	if own == "" || own != host {
		return nil
	}
	return req.Credentials
}

// ociHost is the registry host of oci://host/repository.
func ociHost(ref string) string {
	h := strings.TrimPrefix(ref, "oci://")
	if i := strings.IndexByte(h, '/'); i >= 0 {
		h = h[:i]
	}
	return h
}
