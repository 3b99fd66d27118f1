package graphite_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/graphite"
)

// TestGraphite_RealServer queries a real Graphite stack (go-carbon and
// carbonapi, testenv.StartGraphite): points sent over carbon's plaintext
// protocol are read back through the render API, aggregated by Graphite's
// functions, and the provider's NoData, MultipleSeries and error paths hold
// against the server's own answers.
func TestGraphite_RealServer(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p, err := graphite.New(ctx, metrics.ProviderConfig{Type: "graphite", Address: graphiteServer.URL})
	g.Expect(err).NotTo(HaveOccurred())

	// Two pods: 99 and 97 successful requests of 100 per 10 s bucket, in
	// the last minute (the latest, still-open bucket stays null).
	now := time.Now().Unix() / 10 * 10
	var points []string
	for i := int64(1); i <= 5; i++ {
		ts := now - 10*i
		points = append(points,
			fmt.Sprintf("real.podinfo.pod-a.ok %d %d", 99, ts), fmt.Sprintf("real.podinfo.pod-a.all %d %d", 100, ts),
			fmt.Sprintf("real.podinfo.pod-b.ok %d %d", 97, ts), fmt.Sprintf("real.podinfo.pod-b.all %d %d", 100, ts))
	}
	g.Expect(graphiteServer.Send(points...)).To(Succeed())

	query := `target=asPercent(
	    sumSeries(real.podinfo.*.ok),
	    sumSeries(real.podinfo.*.all)
	  )
	  &from=-2min`
	// go-carbon writes the whisper files and indexes them (every second).
	g.Eventually(func() error { _, err := p.Query(ctx, query); return err }, 20*time.Second, 250*time.Millisecond).Should(Succeed())
	v, err := p.Query(ctx, query)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(98.0))

	_, err = p.Query(ctx, "target=real.podinfo.no-such-pod.ok&from=-2min")
	g.Expect(err).To(MatchError(metrics.ErrNoData), "a target matching no metric")

	_, err = p.Query(ctx, "target=real.podinfo.pod-a.ok&from=-2h&until=-90min")
	g.Expect(err).To(MatchError(metrics.ErrNoData), "a window with only null points")

	_, err = p.Query(ctx, "target=real.podinfo.*.ok&from=-2min")
	var multi *metrics.MultipleSeriesError
	g.Expect(errors.As(err, &multi)).To(BeTrue(), "%v", err)
	g.Expect(multi.Series).To(Equal([]string{"real.podinfo.pod-a.ok", "real.podinfo.pod-b.ok"}))

	_, err = p.Query(ctx, "target=sumSeries(real.podinfo.*.ok&from=-2min")
	g.Expect(err).To(MatchError(ContainSubstring("graphite answered HTTP 400")), "a target that does not parse")
}

// TestGraphite_RealServerBasicAuth: Graphite behind a reverse proxy that
// asks for basic auth, as hosted Graphite does; the provider's credentials
// pass it.
func TestGraphite_RealServerBasicAuth(t *testing.T) {
	g := NewWithT(t)
	backend, err := url.Parse(graphiteServer.URL)
	g.Expect(err).NotTo(HaveOccurred())
	proxy := httputil.NewSingleHostReverseProxy(backend)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, pw, ok := r.BasicAuth(); !ok || u != user || pw != password {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	p, err := graphite.New(context.Background(), metrics.ProviderConfig{Address: srv.URL,
		Secret: map[string][]byte{"username": []byte(user), "password": []byte(password)}})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = p.Query(context.Background(), "target=real.auth.none&from=-2min")
	g.Expect(err).To(MatchError(metrics.ErrNoData), "authenticated, and the server has no such metric")
}
