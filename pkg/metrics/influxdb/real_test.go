package influxdb_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/influxdb"
)

// TestInfluxDB_RealServer runs Flux queries on a real InfluxDB (OSS 1.8 with
// Flux, testenv.StartInfluxDB) through the provider: aggregates, no data,
// several tables, a query that does not compile and a wrong token.
func TestInfluxDB_RealServer(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(influx.CreateDatabase("mesh")).To(Succeed())
	now := time.Now().Unix()
	var lines []string
	for i := int64(1); i <= 4; i++ {
		lines = append(lines,
			fmt.Sprintf("istio_requests_total,destination_workload=podinfo,response_code=200 value=%d %d", 95+i, now-10*i),
			fmt.Sprintf("istio_requests_total,destination_workload=podinfo,response_code=404 value=%d %d", i, now-10*i))
	}
	g.Expect(influx.Write("mesh", lines...)).To(Succeed())

	secret := map[string][]byte{"token": []byte(influx.Token), "org": []byte("ignored-by-1.8")}
	p, err := influxdb.New(ctx, metrics.ProviderConfig{Type: "influxdb", Address: influx.URL, Secret: secret})
	g.Expect(err).NotTo(HaveOccurred())
	base := `from(bucket: "mesh/autogen")
  |> range(start: -5m)
  |> filter(fn: (r) => r._measurement == "istio_requests_total" and r.destination_workload == "podinfo")`

	v, err := p.Query(ctx, base+`
  |> filter(fn: (r) => r.response_code == "404")
  |> count()`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(4.0), "count() is a long")

	v, err = p.Query(ctx, base+`
  |> filter(fn: (r) => r.response_code == "404")
  |> sum()`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(10.0))

	v, err = p.Query(ctx, base+`
  |> filter(fn: (r) => r.response_code == "200")
  |> mean()`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(97.5))

	_, err = p.Query(ctx, base+`
  |> filter(fn: (r) => r.response_code == "503")
  |> count()`)
	g.Expect(err).To(MatchError(metrics.ErrNoData), "no series matches")

	_, err = p.Query(ctx, base+`
  |> count()`)
	var multi *metrics.MultipleSeriesError
	g.Expect(errors.As(err, &multi)).To(BeTrue(), "%v", err)
	g.Expect(multi.Series).To(HaveLen(2))
	g.Expect(multi.Series[0]).To(ContainSubstring("response_code=200"))
	g.Expect(multi.Series[1]).To(ContainSubstring("response_code=404"))

	_, err = p.Query(ctx, `frm(bucket: "mesh/autogen")`)
	g.Expect(err).To(MatchError(ContainSubstring(`influxdb answered HTTP 500: type error 1:1-1:4: undefined identifier "frm"`)))

	wrong, err := influxdb.New(ctx, metrics.ProviderConfig{Address: influx.URL,
		Secret: map[string][]byte{"token": []byte("admin:wrong-passw0rd"), "org": []byte("o")}})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = wrong.Query(ctx, base+"\n  |> count()")
	g.Expect(err).To(MatchError(ContainSubstring("influxdb answered HTTP 401")))
	g.Expect(err.Error()).NotTo(ContainSubstring("wrong-passw0rd"))
}
