package imagescan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	. "github.com/onsi/gomega"
)

// seed pushes the tags the issue names, and returns each tag's digest.
func seed(r *testRegistry, repo string) map[string]string {
	digests := map[string]string{}
	for _, tag := range []string{"1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0", "latest", "main-1700000100", "main-1700000300", "main-1700000200"} {
		digests[tag] = r.pushImage(repo, tag).String()
	}
	return digests
}

func TestRegistryScanner_Latest(t *testing.T) {
	r := newTestRegistry(t)
	digests := seed(r, "team/app")
	repo := r.host + "/team/app"
	scanner := NewRegistryScanner()

	tests := []struct {
		name   string
		policy Policy
		want   string
	}{
		{name: "semver range below 2", policy: Policy{SemVer: &SemVerPolicy{Range: ">=1.0.0 <2.0.0"}}, want: "1.1.0"},
		{name: "semver open range", policy: Policy{SemVer: &SemVerPolicy{Range: ">=1.0.0"}}, want: "2.0.0"},
		{name: "prerelease excluded", policy: Policy{SemVer: &SemVerPolicy{Range: "~1.2.0 || ~1.1.0"}}, want: "1.1.0"},
		{name: "prerelease allowed by range", policy: Policy{SemVer: &SemVerPolicy{Range: ">=1.2.0-0 <2.0.0"}}, want: "1.2.0-rc.1"},
		{name: "regexp extract numerical", policy: Policy{Numerical: &OrderPolicy{Order: Asc}, FilterTags: &TagFilter{Pattern: `^main-(?P<ts>\d+)$`, Extract: "$ts"}}, want: "main-1700000300"},
		{name: "regexp extract numerical desc", policy: Policy{Numerical: &OrderPolicy{Order: Desc}, FilterTags: &TagFilter{Pattern: `^main-(?P<ts>\d+)$`, Extract: "$ts"}}, want: "main-1700000100"},
		{name: "regexp alphabetical", policy: Policy{Alphabetical: &OrderPolicy{}, FilterTags: &TagFilter{Pattern: `^latest$`}}, want: "latest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			img, err := scanner.Latest(context.Background(), Request{Repository: repo, Policy: tt.policy, Insecure: true})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(img).To(Equal(Image{
				Repository: repo,
				Tag:        tt.want,
				Digest:     digests[tt.want],
				Reference:  repo + ":" + tt.want + "@" + digests[tt.want],
			}))
		})
	}
}

func TestRegistryScanner_MultiArchPinnedByIndex(t *testing.T) {
	g := NewWithT(t)
	r := newTestRegistry(t)
	r.pushImage("app", "1.0.0")
	idx := r.pushIndex("app", "1.1.0")
	img, err := NewRegistryScanner().Latest(context.Background(), Request{
		Repository: r.host + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "^1"}}, Insecure: true,
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(img.Tag).To(Equal("1.1.0"))
	g.Expect(img.Digest).To(Equal(idx.String()), "the index's digest, not one platform's")
}

func TestRegistryScanner_DigestByHead(t *testing.T) {
	g := NewWithT(t)
	r := newTestRegistry(t)
	want := r.pushImage("app", "1.0.0")
	heads, gets := r.heads.Load(), r.gets.Load()
	img, err := NewRegistryScanner().Latest(context.Background(), Request{
		Repository: r.host + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "*"}}, Insecure: true,
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(img.Digest).To(Equal(want.String()))
	g.Expect(r.heads.Load() - heads).To(Equal(int32(1)))
	g.Expect(r.gets.Load()).To(Equal(gets), "no manifest GET, which Docker Hub counts as a pull")
}

func TestRegistryScanner_HeadWithoutDigest(t *testing.T) {
	g := NewWithT(t)
	r := newTestRegistry(t, withHeadWithoutDigest())
	r.pushImage("app", "1.0.0")
	idx := r.pushIndex("app", "1.1.0")
	img, err := NewRegistryScanner().Latest(context.Background(), Request{
		Repository: r.host + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "*"}}, Insecure: true,
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(img.Digest).To(Equal(idx.String()), "the fallback GET pins the index too")
	g.Expect(r.gets.Load()).To(BeNumerically(">=", 1))
}

func TestRegistryScanner_NewTagFoundByNextScan(t *testing.T) {
	g := NewWithT(t)
	r := newTestRegistry(t)
	r.pushImage("app", "1.0.0")
	scanner := NewRegistryScanner()
	req := Request{Repository: r.host + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: ">=1.0.0"}}, Insecure: true}

	img, err := scanner.Latest(context.Background(), req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(img.Tag).To(Equal("1.0.0"))

	d := r.pushImage("app", "1.1.0")
	img, err = scanner.Latest(context.Background(), req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(img.Tag).To(Equal("1.1.0"))
	g.Expect(img.Digest).To(Equal(d.String()))

	// A tag moved to another image is pinned by its new digest.
	moved := r.pushImage("app", "1.1.0")
	g.Expect(moved).NotTo(Equal(d))
	img, err = scanner.Latest(context.Background(), req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(img.Digest).To(Equal(moved.String()))
}

func TestRegistryScanner_NoMatchingTag(t *testing.T) {
	g := NewWithT(t)
	r := newTestRegistry(t)
	seed(r, "app")
	_, err := NewRegistryScanner().Latest(context.Background(), Request{
		Repository: r.host + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: ">=3.0.0"}}, Insecure: true,
	})
	g.Expect(IsNoMatchingTag(err)).To(BeTrue(), "%v", err)
	var e *Error
	g.Expect(errors.As(err, &e)).To(BeTrue())
	g.Expect(e.TagsSeen).To(Equal(8))
	g.Expect(err.Error()).To(Equal(r.host + "/app: none of the 8 tags matches the image policy"))
}

func TestRegistryScanner_BasicAuth(t *testing.T) {
	const user, pass = "robot", "correct-horse-battery-staple"
	r := newTestRegistry(t, withBasicAuth(user, pass))
	want := r.pushImage("private/app", "1.0.0")
	repo := r.host + "/private/app"
	policy := Policy{SemVer: &SemVerPolicy{Range: "1.x"}}
	scanner := NewRegistryScanner()

	creds := func(t *testing.T, u, p string) *Credentials {
		c, err := CredentialsFromSecret(dockerConfigSecret(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, r.host, basicAuth(u, p))))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("right login", func(t *testing.T) {
		g := NewWithT(t)
		img, err := scanner.Latest(context.Background(), Request{Repository: repo, Policy: policy, Credentials: creds(t, user, pass), Insecure: true})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(img.Digest).To(Equal(want.String()))
	})
	t.Run("logs carry no credentials", func(t *testing.T) {
		g := NewWithT(t)
		var logs strings.Builder
		log := funcr.New(func(prefix, args string) { logs.WriteString(prefix + " " + args + "\n") }, funcr.Options{Verbosity: 10})
		ctx := logr.NewContext(context.Background(), log)
		for _, p := range []string{pass, "wrong-password-1234"} {
			_, _ = scanner.Latest(ctx, Request{Repository: repo, Policy: policy, Credentials: creds(t, user, p), Insecure: true})
		}
		g.Expect(logs.String()).To(ContainSubstring("Resolving digest"), "the scan logged")
		g.Expect(logs.String()).NotTo(ContainSubstring(pass))
		g.Expect(logs.String()).NotTo(ContainSubstring("wrong-password-1234"))
		g.Expect(logs.String()).NotTo(ContainSubstring(basicAuth(user, pass)))
	})
	for _, tt := range []struct {
		name  string
		creds *Credentials
	}{
		{name: "wrong password", creds: creds(t, user, "wrong-password-1234")},
		{name: "login for another host", creds: func() *Credentials {
			c, err := ParseDockerConfigJSON([]byte(fmt.Sprintf(`{"auths":{"ghcr.io":{"auth":%q}}}`, basicAuth(user, pass))))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}()},
		{name: "anonymous"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := scanner.Latest(context.Background(), Request{Repository: repo, Policy: policy, Credentials: tt.creds, Insecure: true})
			g.Expect(IsUnauthorized(err)).To(BeTrue(), "%v", err)
			g.Expect(asError(t, err).Transient()).To(BeFalse())
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
				g.Expect(s).NotTo(ContainSubstring("wrong-password-1234"))
				g.Expect(s).NotTo(ContainSubstring(pass))
				g.Expect(s).NotTo(ContainSubstring(basicAuth(user, "wrong-password-1234")))
				g.Expect(s).NotTo(ContainSubstring(basicAuth(user, pass)))
			}
			g.Expect(err.Error()).To(ContainSubstring("refused the credentials"))
		})
	}
}

func TestRegistryScanner_TokenAuth(t *testing.T) {
	const user, pass = "robot", "token-service-password"
	r := newTestRegistry(t, withBearerAuth(user, pass))
	want := r.pushImage("private/app", "1.0.0")
	req := Request{Repository: r.host + "/private/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "1.x"}}, Insecure: true}
	scanner := NewRegistryScanner()
	login := func(p string) *Credentials {
		c, err := ParseDockerConfigJSON([]byte(fmt.Sprintf(`{"auths":{%q:{"username":%q,"password":%q}}}`, "http://"+r.host+"/v2/", user, p)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	g := NewWithT(t)
	issued := r.tokens.Load()
	req.Credentials = login(pass)
	img, err := scanner.Latest(context.Background(), req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(img.Digest).To(Equal(want.String()))
	g.Expect(r.tokens.Load()).To(BeNumerically(">", issued), "the scan went through the token service")

	req.Credentials = login("wrong-token-password")
	_, err = scanner.Latest(context.Background(), req)
	g.Expect(IsUnauthorized(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).NotTo(ContainSubstring("wrong-token-password"))
	g.Expect(err.Error()).NotTo(ContainSubstring(basicAuth(user, "wrong-token-password")))
}

func TestRegistryScanner_Unreachable(t *testing.T) {
	t.Run("stopped registry", func(t *testing.T) {
		g := NewWithT(t)
		r := newTestRegistry(t)
		r.pushImage("app", "1.0.0")
		r.srv.Close()
		_, err := NewRegistryScanner().Latest(context.Background(), Request{
			Repository: r.host + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "*"}}, Insecure: true,
		})
		g.Expect(IsRegistryUnreachable(err)).To(BeTrue(), "%v", err)
		g.Expect(asError(t, err).Transient()).To(BeTrue())
		g.Expect(err.Error()).To(ContainSubstring("the registry cannot be reached"))

		// Without insecure the refused HTTP fallback is not the cause: nothing listens.
		_, err = NewRegistryScanner().Latest(context.Background(), Request{
			Repository: r.host + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "*"}},
		})
		g.Expect(IsRegistryUnreachable(err)).To(BeTrue(), "%v", err)
	})
	t.Run("registry that does not answer", func(t *testing.T) {
		g := NewWithT(t)
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			select {
			case <-release:
			case <-req.Context().Done():
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		start := time.Now()
		_, err := NewRegistryScanner(WithTimeout(300*time.Millisecond)).Latest(context.Background(), Request{
			Repository: strings.TrimPrefix(srv.URL, "http://") + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "*"}}, Insecure: true,
		})
		g.Expect(IsRegistryUnreachable(err)).To(BeTrue(), "%v", err)
		g.Expect(err.Error()).To(ContainSubstring("no answer before the scan's timeout"))
		g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
	})
	t.Run("host name that does not resolve", func(t *testing.T) {
		g := NewWithT(t)
		_, err := NewRegistryScanner(WithTimeout(10*time.Second)).Latest(context.Background(), Request{
			Repository: "registry.invalid/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "*"}},
		})
		g.Expect(IsRegistryUnreachable(err)).To(BeTrue(), "%v", err)
	})
}

func TestRegistryScanner_RepositoryNotFound(t *testing.T) {
	g := NewWithT(t)
	r := newTestRegistry(t)
	r.pushImage("app", "1.0.0")
	_, err := NewRegistryScanner().Latest(context.Background(), Request{
		Repository: r.host + "/missing", Policy: Policy{SemVer: &SemVerPolicy{Range: "*"}}, Insecure: true,
	})
	g.Expect(IsRepositoryNotFound(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(HavePrefix("failed to list tags of " + r.host + "/missing: the registry has no such repository"))
}

func TestRegistryScanner_TooManyTags(t *testing.T) {
	g := NewWithT(t)
	r := newTestRegistry(t)
	r.pushManifestTags("app", []string{"1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5"})
	req := Request{Repository: r.host + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "*"}}, Insecure: true}

	_, err := NewRegistryScanner(WithMaxTags(5)).Latest(context.Background(), req)
	g.Expect(IsTooManyTags(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("has more than 5 tags"))
	g.Expect(asError(t, err).Transient()).To(BeFalse())

	img, err := NewRegistryScanner(WithMaxTags(6)).Latest(context.Background(), req)
	g.Expect(err).NotTo(HaveOccurred(), "exactly at the cap is fine")
	g.Expect(img.Tag).To(Equal("1.0.5"))
}

func TestRegistryScanner_Pagination(t *testing.T) {
	g := NewWithT(t)
	r := newTestRegistry(t)
	tags := make([]string, 2000)
	for i := range tags {
		tags[i] = fmt.Sprintf("1.%d.0", i)
	}
	r.pushManifestTags("app", tags)
	img, err := NewRegistryScanner().Latest(context.Background(), Request{
		Repository: r.host + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "^1"}}, Insecure: true,
	})
	g.Expect(err).NotTo(HaveOccurred())
	// 1.1999.0 sorts early as a string, so only a complete listing finds it.
	g.Expect(img.Tag).To(Equal("1.1999.0"))
	// Pages of 1000, 1000 and an empty last one.
	g.Expect(r.tagPages.Load()).To(Equal(int32(3)), "the list came in pages")

	// The cap counts across pages.
	_, err = NewRegistryScanner(WithMaxTags(1500)).Latest(context.Background(), Request{
		Repository: r.host + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "^1"}}, Insecure: true,
	})
	g.Expect(IsTooManyTags(err)).To(BeTrue(), "%v", err)
	g.Expect(asError(t, err).TagsSeen).To(Equal(2000))
}

func TestRegistryScanner_PlainHTTP(t *testing.T) {
	r := newTestRegistry(t)
	r.pushImage("app", "1.0.0")
	policy := Policy{SemVer: &SemVerPolicy{Range: "*"}}

	t.Run("loopback without insecure is refused", func(t *testing.T) {
		g := NewWithT(t)
		_, err := NewRegistryScanner().Latest(context.Background(), Request{Repository: r.host + "/app", Policy: policy})
		g.Expect(ReasonOf(err)).To(Equal(ReasonInvalidRequest), "%v", err)
		g.Expect(err.Error()).To(ContainSubstring("plain HTTP, which is allowed only for loopback registries with insecure set"))
	})
	t.Run("localhost name with insecure", func(t *testing.T) {
		g := NewWithT(t)
		port := r.host[strings.LastIndex(r.host, ":")+1:]
		img, err := NewRegistryScanner().Latest(context.Background(), Request{Repository: "localhost:" + port + "/app", Policy: policy, Insecure: true})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(img.Reference).To(HavePrefix("localhost:" + port + "/app:1.0.0@sha256:"))
	})
	for _, repo := range []string{"registry.example.com/app", "10.0.0.5:5000/app", "192.168.1.10/app"} {
		t.Run("insecure refused for "+repo, func(t *testing.T) {
			g := NewWithT(t)
			_, err := NewRegistryScanner().Latest(context.Background(), Request{Repository: repo, Policy: policy, Insecure: true})
			g.Expect(ReasonOf(err)).To(Equal(ReasonInvalidRequest), "%v", err)
			g.Expect(err.Error()).To(ContainSubstring("insecure (plain HTTP) is allowed only for loopback registries"))
		})
	}
}

func TestRegistryScanner_InvalidRequest(t *testing.T) {
	tests := []struct {
		name   string
		req    Request
		reason Reason
		want   string
	}{
		{name: "invalid policy", req: Request{Repository: "ghcr.io/org/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "1.0.0 <"}}}, reason: ReasonInvalidPolicy, want: "does not parse"},
		{name: "tag in repository", req: Request{Repository: "ghcr.io/org/app:1.0.0", Policy: Policy{SemVer: &SemVerPolicy{Range: "*"}}}, reason: ReasonInvalidRequest, want: "without tag or digest"},
		{name: "empty repository", req: Request{Policy: Policy{SemVer: &SemVerPolicy{Range: "*"}}}, reason: ReasonInvalidRequest, want: "is not a valid image repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := NewRegistryScanner().Latest(context.Background(), tt.req)
			g.Expect(ReasonOf(err)).To(Equal(tt.reason), "%v", err)
			g.Expect(err.Error()).To(ContainSubstring(tt.want))
		})
	}
}

func TestRegistryScanner_BoundedBody(t *testing.T) {
	g := NewWithT(t)
	// A registry whose tag list never ends: the scanner stops reading at
	// its bound instead of filling memory.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/v2/" {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"name":"app","tags":["`))
		chunk := []byte(strings.Repeat("a", 64*1024))
		for range (maxResponseBody / len(chunk)) + 2 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	_, err := NewRegistryScanner().Latest(context.Background(), Request{
		Repository: strings.TrimPrefix(srv.URL, "http://") + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "*"}}, Insecure: true,
	})
	g.Expect(ReasonOf(err)).To(Equal(ReasonRegistryError), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("larger than the scanner reads"))
}

func TestRegistryScanner_ServerError(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/v2/" {
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	_, err := NewRegistryScanner(WithTimeout(20*time.Second)).Latest(context.Background(), Request{
		Repository: strings.TrimPrefix(srv.URL, "http://") + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "*"}}, Insecure: true,
	})
	g.Expect(IsRegistryUnreachable(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("overloaded or failing"))
}

// asError returns the *Error in err's chain, failing the test without one.
func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want an *imagescan.Error, got %T: %v", err, err)
	}
	return e
}

func TestRegistryScanner_HTTPS(t *testing.T) {
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewTLSServer(inner)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	ref, err := name.NewTag(host + "/app:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(srv.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Repository: host + "/app", Policy: Policy{SemVer: &SemVerPolicy{Range: "*"}}}

	t.Run("trusted certificate", func(t *testing.T) {
		g := NewWithT(t)
		got, err := NewRegistryScanner(WithTransport(srv.Client().Transport)).Latest(context.Background(), req)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Digest).To(Equal(want.String()))
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		g := NewWithT(t)
		_, err := NewRegistryScanner().Latest(context.Background(), req)
		g.Expect(IsRegistryUnreachable(err)).To(BeTrue(), "%v", err)
		g.Expect(err.Error()).To(ContainSubstring("TLS certificate is not trusted"))
	})
}
