package helm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/registry"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// Credentials authenticate to a chart repository or registry. They come
// from a Secret and never appear in errors or logs.
type Credentials struct {
	Username    string
	Password    string
	BearerToken string
	// CertPEM and KeyPEM are a TLS client certificate; CAPEM a CA to trust.
	CertPEM, KeyPEM, CAPEM []byte
}

// Limits of what one chart fetch reads.
const (
	DefaultMaxIndexSize = 32 << 20
	DefaultMaxChartSize = 16 << 20
	// fetchTimeout bounds one HTTP request when the caller's context has no deadline.
	fetchTimeout = 2 * time.Minute
)

// errTooLarge is returned when a response body passes its bound.
var errTooLarge = errors.New("response too large")

// fetched is a chart, loaded fresh from its archive or directory.
type fetched struct {
	chart *chart.Chart
}

// httpClient builds the client of one fetch: TLS from creds, every
// response body bounded by limit.
func httpClient(creds *Credentials, limit int64) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if creds != nil && (len(creds.CertPEM) > 0 || len(creds.CAPEM) > 0) {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if len(creds.CertPEM) > 0 || len(creds.KeyPEM) > 0 {
			cert, err := tls.X509KeyPair(creds.CertPEM, creds.KeyPEM)
			if err != nil {
				// The error of X509KeyPair never quotes the key.
				return nil, fmt.Errorf("invalid TLS client certificate (tls.crt, tls.key): %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		if len(creds.CAPEM) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(creds.CAPEM) {
				return nil, errors.New("invalid CA certificate (ca.crt): no PEM certificate found")
			}
			cfg.RootCAs = pool
		}
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Transport: &boundedTransport{base: tr, limit: limit}, Timeout: fetchTimeout}, nil
}

// boundedTransport makes every response body fail after limit bytes, so
// that no registry or repository can make Sluice hold more.
type boundedTransport struct {
	base  http.RoundTripper
	limit int64
}

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	if resp.ContentLength > t.limit {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", errTooLarge, resp.ContentLength, t.limit)
	}
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: t.limit, limit: t.limit}
	return resp, nil
}

type boundedBody struct {
	io.ReadCloser
	left, limit int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly the limit from a larger one.
		var one [1]byte
		if n, _ := b.ReadCloser.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", errTooLarge, b.limit)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// get reads url with creds (sent only to host), bounded by limit.
func get(ctx context.Context, hc *http.Client, u *url.URL, host string, creds *Credentials) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %s: %w", redactURL(u), err)
	}
	if creds != nil && u.Host == host {
		switch {
		case creds.BearerToken != "":
			req.Header.Set("Authorization", "Bearer "+creds.BearerToken)
		case creds.Username != "" || creds.Password != "":
			req.SetBasicAuth(creds.Username, creds.Password)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		err = fmt.Errorf("failed to get %s: %w", redactURL(u), unwrapURLError(err))
		if errors.Is(err, errTooLarge) {
			return nil, err
		}
		return nil, &transientError{err}
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("failed to get %s: %s", redactURL(u), resp.Status)
		if transientStatus(resp.StatusCode) {
			return nil, &transientError{err}
		}
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", redactURL(u), err)
	}
	return body, nil
}

// unwrapURLError drops the url.Error wrapper, whose message repeats the
// URL (already in ours, without credentials).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL is u without user information, for messages.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// fetchRepository resolves version in the repository's index and
// downloads the archive, from the cache when its digest was seen.
func (r *Renderer) fetchRepository(ctx context.Context, repoURL, name, version string, creds *Credentials) (*fetched, error) {
	base, err := url.Parse(strings.TrimSuffix(repoURL, "/") + "/")
	if err != nil {
		return nil, fmt.Errorf("invalid repository URL: %w", err)
	}
	hc, err := httpClient(creds, r.maxIndexSize())
	if err != nil {
		return nil, err
	}
	data, err := get(ctx, hc, base.ResolveReference(&url.URL{Path: "index.yaml"}), base.Host, creds)
	if err != nil {
		return nil, err
	}
	cv, err := pickVersion(data, name, version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redactURL(base), err)
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("chart %s %s has no URL in the index of %s", name, cv.Version, redactURL(base))
	}
	ref, err := url.Parse(cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("invalid URL of chart %s %s: %w", name, cv.Version, err)
	}
	// A relative URL is relative to the repository, as Helm resolves it.
	au := base.ResolveReference(ref)
	// Without a digest in the index, the archive is downloaded every time:
	// the same URL may serve other bytes.
	key := "repo:" + redactURL(au) + "@" + cv.Digest
	archive, ok := r.cached(key)
	if !ok || cv.Digest == "" {
		hc, err = httpClient(creds, r.maxChartSize())
		if err != nil {
			return nil, err
		}
		if archive, err = get(ctx, hc, au, base.Host, creds); err != nil {
			return nil, err
		}
		if cv.Digest != "" {
			sum := sha256.Sum256(archive)
			if got := hex.EncodeToString(sum[:]); got != cv.Digest {
				return nil, fmt.Errorf("chart %s %s from %s: digest sha256:%s, the index says sha256:%s", name, cv.Version, redactURL(au), got, cv.Digest)
			}
			r.store(key, archive)
		}
	}
	c, err := loader.LoadArchive(bytes.NewReader(archive))
	if err != nil {
		return nil, fmt.Errorf("invalid chart archive %s: %w", redactURL(au), err)
	}
	return &fetched{chart: c}, nil
}

func versionOrAny(v string) string {
	if v == "" {
		return "* (any stable version)"
	}
	return v
}

// fetchOCI picks the highest tag of ref matching version and pulls it,
// from the cache when its manifest digest was seen.
func (r *Renderer) fetchOCI(ctx context.Context, ociURL, version string, creds *Credentials) (*fetched, error) {
	ref := strings.TrimPrefix(ociURL, "oci://")
	host := ref
	if i := strings.IndexByte(ref, '/'); i >= 0 {
		host = ref[:i]
	}
	hc, err := httpClient(creds, r.maxChartSize())
	if err != nil {
		return nil, err
	}
	authz := auth.Client{Client: hc, Cache: auth.NewCache()}
	if creds != nil && (creds.Username != "" || creds.Password != "" || creds.BearerToken != "") {
		authz.Credential = auth.StaticCredential(host, auth.Credential{Username: creds.Username, Password: creds.Password, AccessToken: creds.BearerToken})
	}
	opts := []registry.ClientOption{registry.ClientOptHTTPClient(hc), registry.ClientOptAuthorizer(authz), registry.ClientOptWriter(io.Discard),
		// Never read the credentials files of the controller's home.
		registry.ClientOptCredentialsFile(filepath.Join(os.TempDir(), "sluice-helm-no-registry-config.json"))}
	if isLoopback(host) {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	rc, err := registry.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("failed to create the registry client: %w", err)
	}
	tag, err := r.pickTag(ctx, rc, ref, version)
	if err != nil {
		return nil, err
	}
	full := ref + ":" + strings.ReplaceAll(tag, "+", "_")
	desc, err := rc.Resolve(full)
	if err != nil {
		return nil, classifyRegistry(fmt.Errorf("failed to resolve oci://%s: %w", full, err))
	}
	key := "oci:" + ref + "@" + desc.Digest.String()
	archive, ok := r.cached(key)
	if !ok {
		// Pull the digest just resolved, not the tag, which may have moved since.
		res, err := rc.Pull(ref+"@"+desc.Digest.String(), registry.PullOptWithChart(true))
		if err != nil {
			return nil, classifyRegistry(fmt.Errorf("failed to pull oci://%s: %w", full, err))
		}
		archive = res.Chart.Data
		r.store(key, archive)
	}
	c, err := loader.LoadArchive(bytes.NewReader(archive))
	if err != nil {
		return nil, fmt.Errorf("invalid chart archive oci://%s: %w", full, err)
	}
	return &fetched{chart: c}, nil
}

// pickTag lists the semver tags of ref (highest first) and returns the
// first that satisfies version; stable versions only when version is empty.
func (r *Renderer) pickTag(ctx context.Context, rc *registry.Client, ref, version string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	tags, err := rc.Tags(ref)
	if err != nil {
		return "", classifyRegistry(fmt.Errorf("failed to list the tags of oci://%s: %w", ref, err))
	}
	if len(tags) == 0 {
		return "", fmt.Errorf("chart oci://%s not found: the repository has no semver tag", ref)
	}
	c := "*"
	if version != "" {
		c = version
	}
	constraint, err := semver.NewConstraint(c)
	if err != nil {
		return "", fmt.Errorf("invalid version constraint %q: %w", version, err)
	}
	for _, t := range tags {
		v, err := semver.NewVersion(t)
		if err == nil && constraint.Check(v) {
			return t, nil
		}
	}
	return "", fmt.Errorf("no version of chart oci://%s matches %q (tags: %s)", ref, versionOrAny(version), joinFirst(tags, 10))
}

// joinFirst lists at most n of s, for messages.
func joinFirst(s []string, n int) string {
	if len(s) > n {
		s = append(s[:n:n], "…")
	}
	return strings.Join(s, ", ")
}

func isLoopback(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// loadPath loads a chart directory of a checkout, refusing to leave it.
func loadPath(checkout, rel string) (*fetched, error) {
	root, err := filepath.EvalSymlinks(checkout)
	if err != nil {
		return nil, fmt.Errorf("invalid checkout: %w", err)
	}
	clean := filepath.Clean(filepath.FromSlash(rel))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("chart path %q leaves the checkout", rel)
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(root, clean))
	if err != nil {
		return nil, fmt.Errorf("chart path %q: %w", rel, errors.Unwrap(err))
	}
	if dir != root && !strings.HasPrefix(dir, root+string(filepath.Separator)) {
		return nil, fmt.Errorf("chart path %q leaves the checkout through a symlink", rel)
	}
	if err := symlinksInside(dir, root); err != nil {
		return nil, fmt.Errorf("chart path %q: %w", rel, stripDir(err, root))
	}
	c, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("invalid chart at %q: %w", rel, stripDir(err, root))
	}
	return &fetched{chart: c}, nil
}

// stripDir removes the checkout's directory from a loader error, which
// means nothing to the user.
func stripDir(err error, dir string) error {
	msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// symlinksInside refuses a chart whose symlinks lead out of the checkout:
// Helm's loader follows them, and .Files.Get would then read the
// controller's own files.
func symlinksInside(dir, root string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		target, err := filepath.EvalSymlinks(p)
		if err != nil {
			return fmt.Errorf("broken symlink %s: %w", p, err)
		}
		if target != root && !strings.HasPrefix(target, root+string(filepath.Separator)) {
			return fmt.Errorf("symlink %s leads out of the checkout", p)
		}
		return nil
	})
}
