package imagescan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testRegistry is go-containerregistry's in-memory OCI registry on a
// loopback httptest server, optionally behind basic auth.
type testRegistry struct {
	t    *testing.T
	srv  *httptest.Server
	host string
	// user and pass, when set, are required on every request.
	user, pass string
	// bearer puts the login behind a token service, as Docker Hub, GHCR
	// and Harbor do, instead of basic auth on every request.
	bearer bool
	// headWithoutDigest drops Docker-Content-Digest from HEAD responses,
	// as some registries do.
	headWithoutDigest bool
	// heads and gets count the manifest requests by method.
	heads, gets atomic.Int32
	// tagPages counts the tag-list requests, to see pagination happen.
	tagPages atomic.Int32
	// tokens counts the tokens issued.
	tokens atomic.Int32
}

type registryOption func(*testRegistry)

func withBasicAuth(user, pass string) registryOption {
	return func(r *testRegistry) { r.user, r.pass = user, pass }
}

func newTestRegistry(t *testing.T, opts ...registryOption) *testRegistry {
	t.Helper()
	r := &testRegistry{t: t}
	for _, o := range opts {
		o(r)
	}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(r.authenticate(r.paginate(r.manifests(inner))))
	t.Cleanup(r.srv.Close)
	r.host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

func withBearerAuth(user, pass string) registryOption {
	return func(r *testRegistry) { r.user, r.pass, r.bearer = user, pass, true }
}

// testToken is the token the test token service issues for the right login.
const testToken = "issued-token-0123456789"

func unauthorized(w http.ResponseWriter, challenge string) {
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
}

// authenticate answers 401 with a Basic challenge unless the request
// carries the right login, as a registry behind basic auth does; with
// bearer, the challenge sends the client to /token, which swaps the login
// for a token (the distribution token protocol).
func (r *testRegistry) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.bearer {
			if req.URL.Path == "/token" {
				if u, p, ok := req.BasicAuth(); !ok || u != r.user || p != r.pass {
					unauthorized(w, `Basic realm="token"`)
					return
				}
				r.tokens.Add(1)
				w.Header().Set("Content-Type", "application/json")
				_, _ = fmt.Fprintf(w, `{"token":%q}`, testToken)
				return
			}
			if req.Header.Get("Authorization") != "Bearer "+testToken {
				unauthorized(w, fmt.Sprintf(`Bearer realm="http://%s/token",service="test"`, req.Host))
				return
			}
			next.ServeHTTP(w, req)
			return
		}
		if r.user != "" {
			u, p, ok := req.BasicAuth()
			if !ok || u != r.user || p != r.pass {
				unauthorized(w, `Basic realm="test"`)
				return
			}
		}
		next.ServeHTTP(w, req)
	})
}

func withHeadWithoutDigest() registryOption {
	return func(r *testRegistry) { r.headWithoutDigest = true }
}

// manifests counts manifest requests and, with headWithoutDigest, strips
// the digest header from HEAD answers.
func (r *testRegistry) manifests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !strings.Contains(req.URL.Path, "/manifests/") {
			next.ServeHTTP(w, req)
			return
		}
		switch req.Method {
		case http.MethodHead:
			r.heads.Add(1)
			if r.headWithoutDigest {
				next.ServeHTTP(dropHeader{ResponseWriter: w, name: "Docker-Content-Digest"}, req)
				return
			}
		case http.MethodGet:
			r.gets.Add(1)
		}
		next.ServeHTTP(w, req)
	})
}

// dropHeader removes one header just before the status is written.
type dropHeader struct {
	http.ResponseWriter
	name string
}

func (d dropHeader) WriteHeader(code int) {
	d.Header().Del(d.name)
	d.ResponseWriter.WriteHeader(code)
}

// paginate adds the Link header of the distribution spec's paginated tag
// list: the in-memory registry honours n and last but does not announce a
// next page, which every real registry (distribution, Harbor, GHCR) does.
func (r *testRegistry) paginate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet || !strings.HasSuffix(req.URL.Path, "/tags/list") {
			next.ServeHTTP(w, req)
			return
		}
		r.tagPages.Add(1)
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req)
		var body struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = io.Copy(w, bytes.NewReader(rec.Body.Bytes()))
			return
		}
		// The in-memory registry answers a "last" past the final tag with
		// the whole list again; the spec says an empty one.
		if last := req.URL.Query().Get("last"); last != "" {
			kept := body.Tags[:0]
			for _, tag := range body.Tags {
				if tag > last {
					kept = append(kept, tag)
				}
			}
			body.Tags = kept
		}
		if n, _ := strconv.Atoi(req.URL.Query().Get("n")); n > 0 && len(body.Tags) == n {
			q := url.Values{"n": {strconv.Itoa(n)}, "last": {body.Tags[n-1]}}
			w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, req.URL.Path, q.Encode()))
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
}

func (r *testRegistry) writeOpts() []remote.Option {
	if r.user == "" {
		return nil
	}
	return []remote.Option{remote.WithAuth(&authn.Basic{Username: r.user, Password: r.pass})}
}

func (r *testRegistry) tag(repo, tag string) name.Tag {
	r.t.Helper()
	ref, err := name.NewTag(r.host + "/" + repo + ":" + tag)
	if err != nil {
		r.t.Fatal(err)
	}
	return ref
}

// pushImage pushes a random single-platform image and returns its digest.
func (r *testRegistry) pushImage(repo, tag string) v1.Hash {
	r.t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := remote.Write(r.tag(repo, tag), img, r.writeOpts()...); err != nil {
		r.t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// pushIndex pushes a random multi-platform index and returns the index's
// digest.
func (r *testRegistry) pushIndex(repo, tag string) v1.Hash {
	r.t.Helper()
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := remote.WriteIndex(r.tag(repo, tag), idx, r.writeOpts()...); err != nil {
		r.t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// pushManifestTags tags one small image under many tags quickly: the
// blobs go up once, then each tag is one manifest PUT.
func (r *testRegistry) pushManifestTags(repo string, tags []string) {
	r.t.Helper()
	img, err := random.Image(16, 1)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := remote.Write(r.tag(repo, tags[0]), img, r.writeOpts()...); err != nil {
		r.t.Fatal(err)
	}
	for _, tag := range tags[1:] {
		if err := remote.Tag(r.tag(repo, tag), img, r.writeOpts()...); err != nil {
			r.t.Fatal(err)
		}
	}
}
