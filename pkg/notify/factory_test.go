package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func testScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = sluicev1beta1.AddToScheme(s)
	return s
}

func fakeReader(objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(objs...).Build()
}

func secret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "test"}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestNew_SecretResolution(t *testing.T) {
	g := NewWithT(t)
	rec := &receiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	// The Secret's address overrides spec.address; its token is a bearer token.
	p := provider(TypeGeneric, "https://example.invalid/never-used")
	p.Spec.SecretRef = &corev1.LocalObjectReference{Name: "hook"}
	reader := fakeReader(secret("hook", map[string]string{SecretKeyAddress: srv.URL + "/from-secret", SecretKeyToken: "s3cr3t-token"}))
	n, err := New(context.Background(), reader, p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n.Post(context.Background(), failedRelease())).To(Succeed())
	g.Expect(rec.paths).To(Equal([]string{"/from-secret"}))
	g.Expect(rec.auth).To(Equal([]string{"Bearer s3cr3t-token"}))
}

func TestNew_Errors(t *testing.T) {
	tests := []struct {
		name    string
		p       func() *sluicev1beta1.AlertProvider
		objs    []client.Object
		wantErr string
	}{
		{
			name:    "unknown type",
			p:       func() *sluicev1beta1.AlertProvider { return provider("pagerduty", "https://example.com") },
			wantErr: `AlertProvider test/pagerduty: unsupported AlertProvider type "pagerduty": valid types are slack, msteams, discord, rocket, gchat, generic`,
		},
		{
			name: "missing Secret",
			p: func() *sluicev1beta1.AlertProvider {
				p := provider(TypeSlack, "")
				p.Spec.SecretRef = &corev1.LocalObjectReference{Name: "absent"}
				return p
			},
			wantErr: "failed to read Secret test/absent",
		},
		{
			name:    "no address",
			p:       func() *sluicev1beta1.AlertProvider { return provider(TypeDiscord, "") },
			wantErr: "has no address",
		},
		{
			name: "invalid address in the Secret",
			p: func() *sluicev1beta1.AlertProvider {
				p := provider(TypeMSTeams, "")
				p.Spec.SecretRef = &corev1.LocalObjectReference{Name: "bad"}
				return p
			},
			objs:    []client.Object{secret("bad", map[string]string{SecretKeyAddress: "ftp://user:hunter2@example.com/x"})},
			wantErr: "the address is not a valid http(s) URL",
		},
		{
			name: "invalid proxy",
			p: func() *sluicev1beta1.AlertProvider {
				p := provider(TypeGChat, "https://chat.googleapis.com/v1/spaces/X/messages?key=k&token=t")
				p.Spec.Proxy = "socks5://user:hunter2@proxy"
				return p
			},
			wantErr: "spec.proxy is not a valid http(s) URL",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := New(context.Background(), fakeReader(tt.objs...), tt.p())
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			g.Expect(err.Error()).NotTo(ContainSubstring("hunter2"))
			g.Expect(err.Error()).NotTo(ContainSubstring("token=t"))
			if tt.name == "unknown type" {
				g.Expect(errors.Is(err, ErrUnsupportedType)).To(BeTrue())
			}
		})
	}
}

func TestNotifiers_ErrorsAreRedacted(t *testing.T) {
	const token = "tok-5f1d2c3b4a"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A misbehaving server that echoes the URL and the token.
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("bad request to " + r.URL.String() + " with " + r.Header.Get("Authorization")))
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	for _, typ := range Types {
		for _, base := range []string{srv.URL, closedURL} {
			t.Run(typ+" "+base, func(t *testing.T) {
				g := NewWithT(t)
				address := base + "/services/T0/B0/webhook-secret-path?sig=query-secret"
				p := provider(typ, address)
				p.Spec.SecretRef = &corev1.LocalObjectReference{Name: "s"}
				data := map[string]string{SecretKeyAddress: address}
				if typ != TypeSlack {
					data[SecretKeyToken] = token
				}
				n, err := New(context.Background(), fakeReader(secret("s", data)), p)
				g.Expect(err).NotTo(HaveOccurred())
				err = n.Post(context.Background(), failedRelease())
				g.Expect(err).To(HaveOccurred())
				for _, s := range []string{"webhook-secret-path", "query-secret", token, address} {
					g.Expect(err.Error()).NotTo(ContainSubstring(s))
				}
				g.Expect(strings.Contains(err.Error(), typ)).To(BeTrue(), err.Error())
				if base == srv.URL {
					g.Expect(IsPermanent(err)).To(BeTrue(), "a 400 is not retried")
				} else {
					g.Expect(IsPermanent(err)).To(BeFalse(), "a refused connection is retried")
				}
			})
		}
	}
}

func TestNew_Proxy(t *testing.T) {
	g := NewWithT(t)
	var seen []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A forward proxy receives the absolute URL of plain-HTTP requests.
		seen = append(seen, r.URL.String())
		w.WriteHeader(http.StatusNoContent)
	}))
	defer proxy.Close()
	p := provider(TypeDiscord, "http://discord.example.invalid/api/webhooks/1/abc")
	p.Spec.Proxy = proxy.URL
	n, err := New(context.Background(), nil, p, WithClients(NewClients()))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n.Post(context.Background(), failedRelease())).To(Succeed())
	g.Expect(seen).To(Equal([]string{"http://discord.example.invalid/api/webhooks/1/abc"}))
}
