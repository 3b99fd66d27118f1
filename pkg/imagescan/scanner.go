// Package imagescan finds the latest image of a repository in an OCI
// registry: it lists the tags, picks one with a policy shaped like Flux's
// ImagePolicy (a semver range, or a regexp with an extracted value ordered
// alphabetically or numerically), and pins it by the digest the registry
// serves for that tag, so that a multi-arch image is pinned by its index.
//
// Every failure is an *Error with a Reason that a controller can put in a
// condition as is; messages never contain credentials.
package imagescan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Defaults of a RegistryScanner.
const (
	// DefaultMaxTags bounds the tags listed per scan: enough for a busy CI
	// repository, small enough that a scan stays cheap (about 1 MiB).
	DefaultMaxTags = 10000
	// DefaultTimeout bounds one scan, listing and HEAD together.
	DefaultTimeout = 30 * time.Second
	// pageSize is what the scanner asks per page of tags; ECR refuses more
	// than 1000.
	pageSize = 1000
	// maxResponseBody bounds every response body read: a page of 1000 tags
	// of the longest legal length (128) is about 140 KiB.
	maxResponseBody = 4 << 20
)

// Scanner finds the latest image of a repository. The controller depends
// on this interface; RegistryScanner implements it against a real
// registry.
type Scanner interface {
	Latest(ctx context.Context, req Request) (Image, error)
}

// Request is one scan.
type Request struct {
	// Repository is the image repository as users write it in manifests,
	// e.g. "ghcr.io/org/app" or "nginx" (Docker Hub), with no tag or digest.
	Repository string
	// Policy selects the tag.
	Policy Policy
	// Credentials authenticate to the registry; nil scans anonymously.
	Credentials *Credentials
	// Insecure allows plain HTTP. It is accepted only for loopback
	// registries (localhost, 127.0.0.0/8, ::1): anywhere else plain HTTP
	// would expose the credentials and let the network choose the image.
	Insecure bool
}

// Image is the image a scan selected.
type Image struct {
	// Repository is the request's repository, as written there.
	Repository string
	// Tag is the selected tag.
	Tag string
	// Digest is what the registry serves for Tag (sha256:...): for a
	// multi-arch image, the digest of the index.
	Digest string
	// Reference is Repository:Tag@Digest, pinned and readable.
	Reference string
}

// RegistryScanner scans OCI registries with go-containerregistry.
type RegistryScanner struct {
	maxTags   int
	timeout   time.Duration
	transport http.RoundTripper
	userAgent string
}

var _ Scanner = (*RegistryScanner)(nil)

// Option configures a RegistryScanner.
type Option func(*RegistryScanner)

// WithMaxTags sets how many tags a scan lists before it fails with
// TooManyTags; n <= 0 keeps the default.
func WithMaxTags(n int) Option {
	return func(s *RegistryScanner) {
		if n > 0 {
			s.maxTags = n
		}
	}
}

// WithTimeout bounds each scan; d <= 0 keeps the default.
func WithTimeout(d time.Duration) Option {
	return func(s *RegistryScanner) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithTransport sets the HTTP transport under the scanner's guards, e.g.
// one that trusts a private CA.
func WithTransport(rt http.RoundTripper) Option {
	return func(s *RegistryScanner) {
		if rt != nil {
			s.transport = rt
		}
	}
}

// WithUserAgent sets the User-Agent sent to registries.
func WithUserAgent(ua string) Option {
	return func(s *RegistryScanner) { s.userAgent = ua }
}

// NewRegistryScanner returns a scanner with the defaults, changed by opts.
func NewRegistryScanner(opts ...Option) *RegistryScanner {
	s := &RegistryScanner{maxTags: DefaultMaxTags, timeout: DefaultTimeout}
	if t, ok := remote.DefaultTransport.(*http.Transport); ok {
		// A clone, so that connection pools are the scanner's own.
		s.transport = t.Clone()
	} else {
		s.transport = remote.DefaultTransport
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Latest lists the tags of req.Repository, selects one with req.Policy and
// resolves its digest with a HEAD request, which registries such as Docker
// Hub do not count against pull limits.
func (s *RegistryScanner) Latest(ctx context.Context, req Request) (Image, error) {
	policy, err := req.Policy.compile()
	if err != nil {
		return Image{}, err
	}
	repoName := strings.TrimSpace(req.Repository)
	var nameOpts []name.Option
	if req.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	repo, err := name.NewRepository(repoName, nameOpts...)
	if err != nil {
		return Image{}, &Error{Reason: ReasonInvalidRequest, err: err,
			text: fmt.Sprintf("repository %q is not a valid image repository (write host/path, without tag or digest): %v", repoName, err)}
	}
	host := repo.RegistryStr()
	if req.Insecure && !isLoopback(host) {
		return Image{}, &Error{Reason: ReasonInvalidRequest,
			text: fmt.Sprintf("insecure (plain HTTP) is allowed only for loopback registries, not %s: serve the registry over HTTPS", host)}
	}

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	log := logr.FromContextOrDiscard(ctx).WithValues("repository", repoName)
	secrets := req.Credentials.secrets()

	opts := []remote.Option{
		remote.WithAuth(req.Credentials.authenticator(host)),
		remote.WithTransport(&guardTransport{inner: s.transport, allowHTTP: req.Insecure}),
		remote.WithPageSize(pageSize),
	}
	if s.userAgent != "" {
		opts = append(opts, remote.WithUserAgent(s.userAgent))
	}
	puller, err := remote.NewPuller(opts...)
	if err != nil {
		return Image{}, classify(err, stepList, repoName, secrets)
	}

	log.V(1).Info("Listing tags")
	tags, err := s.listTags(ctx, puller, repo)
	if err != nil {
		return Image{}, classify(err, stepList, repoName, secrets)
	}
	tag, err := policy.latest(tags)
	if err != nil {
		var noMatch *Error
		if errors.As(err, &noMatch) {
			noMatch.text = fmt.Sprintf("%s: %s", repoName, noMatch.text)
		}
		return Image{}, err
	}

	ref := repoName + ":" + tag
	log.V(1).Info("Resolving digest", "tag", tag, "tagsSeen", len(tags))
	desc, err := puller.Head(ctx, repo.Tag(tag))
	if err != nil && headUnsupported(err) {
		// Some registries answer HEAD without the digest header, or not at
		// all: fetch the manifest, whose digest the library computes from
		// the bytes (the same digest a HEAD would have given).
		log.V(1).Info("Fetching the manifest: HEAD gave no digest", "tag", tag)
		var d *remote.Descriptor
		if d, err = puller.Get(ctx, repo.Tag(tag)); err == nil {
			desc = &d.Descriptor
		}
	}
	if err != nil {
		return Image{}, classify(err, stepHead, ref, secrets)
	}
	digest := desc.Digest.String()
	return Image{Repository: repoName, Tag: tag, Digest: digest, Reference: ref + "@" + digest}, nil
}

// headUnsupported reports a HEAD that failed for want of support (405,
// 501, or a response without the digest header), not for access or
// network reasons that a GET would meet as well.
func headUnsupported(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusMethodNotAllowed || te.StatusCode == http.StatusNotImplemented
	}
	reason, _ := reasonFor(err, stepHead)
	return reason == ReasonRegistryError
}

// listTags pages through the tags; go-containerregistry follows the
// registry's Link headers, and this loop stops at the cap.
func (s *RegistryScanner) listTags(ctx context.Context, p *remote.Puller, repo name.Repository) ([]string, error) {
	lister, err := p.Lister(ctx, repo)
	if err != nil {
		return nil, err
	}
	var tags []string
	for lister.HasNext() {
		page, err := lister.Next(ctx)
		if err != nil {
			return nil, err
		}
		tags = append(tags, page.Tags...)
		if len(tags) > s.maxTags {
			return nil, &Error{Reason: ReasonTooManyTags, TagsSeen: len(tags),
				text: fmt.Sprintf("%s has more than %d tags, the most a scan lists: delete old tags, or raise the scanner's limit", repo.String(), s.maxTags)}
		}
		if len(page.Tags) == 0 && lister.HasNext() {
			// An empty page that links to another would loop forever.
			return nil, &Error{Reason: ReasonRegistryError,
				text: fmt.Sprintf("failed to list tags of %s: the registry returned an empty page with a link to a next one", repo.String())}
		}
	}
	return tags, nil
}

// guardTransport refuses plain HTTP except to loopback registries the
// request marked insecure, and bounds every response body. It sits under
// go-containerregistry's own transports, so it also sees the pings, the
// token requests and the pagination.
type guardTransport struct {
	inner     http.RoundTripper
	allowHTTP bool
}

func (g *guardTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && (!g.allowHTTP || !isLoopback(r.URL.Host)) {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, fmt.Errorf("%w: %s is not a loopback registry marked insecure", errPlainHTTP, r.URL.Host)
	}
	resp, err := g.inner.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{rc: resp.Body, left: maxResponseBody}
	return resp, nil
}

// boundedBody fails a read past its bound instead of truncating silently:
// a truncated tag list would look valid.
type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly the bound from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, maxResponseBody)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

// isLoopback reports whether hostport names this machine: "localhost" or a
// loopback IP. Names that merely resolve to one are not trusted, since DNS
// could point them elsewhere tomorrow.
func isLoopback(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
