package helm_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/downloader"
	"helm.sh/helm/v4/pkg/getter"
	"helm.sh/helm/v4/pkg/registry"

	"github.com/sluice-cd/sluice/pkg/gitsync/helm"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// libChart renders the ConfigMap <release>-<name> naming its chart version.
func libChart(name, version string) testenv.Chart {
	return testenv.Chart{Name: name, Version: version, Files: map[string]string{"templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-` + name + `}
data: {chart: {{ .Chart.Version | quote }}}
`}}
}

// appChart depends on lib (an HTTP repository) and db (an OCI registry).
func appChart(version, libRepo, libVersion, dbRepo string) testenv.Chart {
	c := libChart("app", version)
	c.Dependencies = []*chart.Dependency{
		{Name: "lib", Version: libVersion, Repository: libRepo},
		{Name: "db", Version: "2.x", Repository: dbRepo},
	}
	return c
}

// TestRender_Dependencies: dependencies not vendored are downloaded from an
// HTTP repository and an OCI registry, the highest version in range.
func TestRender_Dependencies(t *testing.T) {
	g := NewWithT(t)
	libs := repoWith(t, libChart("lib", "1.0.0"), libChart("lib", "1.1.0"), libChart("lib", "2.0.0"))
	reg := testenv.StartOCIRegistry()
	t.Cleanup(reg.Close)
	_, err := reg.Push("deps", libChart("db", "2.1.0"))
	g.Expect(err).NotTo(HaveOccurred())
	dbRepo := "oci://" + reg.Host + "/deps"
	apps := repoWith(t, appChart("0.1.0", libs.URL, "1.x", dbRepo))

	ren := &helm.Renderer{}
	res, err := ren.Render(context.Background(), helm.Request{Source: helm.Source{Repository: apps.URL, Name: "app"}, ReleaseName: "x", Namespace: "default"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(data(g, res.Objects, "x-app")).To(HaveKeyWithValue("chart", "0.1.0"))
	g.Expect(data(g, res.Objects, "x-lib")).To(HaveKeyWithValue("chart", "1.1.0"))
	g.Expect(data(g, res.Objects, "x-db")).To(HaveKeyWithValue("chart", "2.1.0"))
	// A second render takes the archives from the cache (digests unchanged).
	before := libs.Requests("/lib-1.1.0.tgz")
	_, err = ren.Render(context.Background(), helm.Request{Source: helm.Source{Repository: apps.URL, Name: "app"}, ReleaseName: "x", Namespace: "default"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(libs.Requests("/lib-1.1.0.tgz")).To(Equal(before))
}

// TestRender_DependenciesChartLock: a Chart.lock made by Helm's own
// dependency manager pins the versions; one out of sync with Chart.yaml is
// refused, as helm dependency build does.
func TestRender_DependenciesChartLock(t *testing.T) {
	g := NewWithT(t)
	libs := repoWith(t, libChart("lib", "1.0.0"))
	reg := testenv.StartOCIRegistry()
	t.Cleanup(reg.Close)
	_, err := reg.Push("deps", libChart("db", "2.0.0"))
	g.Expect(err).NotTo(HaveOccurred())
	checkout := t.TempDir()
	dir := filepath.Join(checkout, "charts", "app")
	g.Expect(appChart("0.1.0", libs.URL, "1.x", "oci://"+reg.Host+"/deps").WriteDir(dir)).To(Succeed())

	// helm dependency update: Chart.lock, and the archives in charts/,
	// which are removed to leave only the lock.
	rc, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "config.json")))
	g.Expect(err).NotTo(HaveOccurred())
	home := t.TempDir()
	m := &downloader.Manager{Out: io.Discard, ChartPath: dir, Getters: getter.Getters(), RegistryClient: rc,
		RepositoryConfig: filepath.Join(home, "repositories.yaml"), RepositoryCache: filepath.Join(home, "cache"), ContentCache: filepath.Join(home, "content")}
	g.Expect(m.Update()).To(Succeed())
	lock, err := os.ReadFile(filepath.Join(dir, "Chart.lock"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(lock)).To(ContainSubstring("version: 1.0.0"))
	g.Expect(os.RemoveAll(filepath.Join(dir, "charts"))).To(Succeed())

	g.Expect(libs.Add(libChart("lib", "1.1.0"))).To(Succeed())
	req := helm.Request{Source: helm.Source{Path: "charts/app"}, CheckoutDir: checkout, ReleaseName: "x", Namespace: "default"}
	res, err := (&helm.Renderer{}).Render(context.Background(), req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(data(g, res.Objects, "x-lib")).To(HaveKeyWithValue("chart", "1.0.0"), "Chart.lock pins 1.0.0 although 1.1.0 is in range")
	g.Expect(data(g, res.Objects, "x-db")).To(HaveKeyWithValue("chart", "2.0.0"))

	chartYAML := filepath.Join(dir, "Chart.yaml")
	raw, err := os.ReadFile(chartYAML)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.WriteFile(chartYAML, []byte(strings.Replace(string(raw), "version: 1.x", "version: ~1.1", 1)), 0o600)).To(Succeed())
	_, err = (&helm.Renderer{}).Render(context.Background(), req)
	g.Expect(err).To(MatchError(ContainSubstring("chart app 0.1.0: the lock file (Chart.lock) is out of sync with the dependencies file (Chart.yaml): update it with 'helm dependency update'")))
}

// TestRender_DependencyErrors: each message names the dependency and what
// to do; the chart's credentials go to its own host only.
func TestRender_DependencyErrors(t *testing.T) {
	libs := repoWith(t, libChart("lib", "1.0.0"))
	private := repoWith(t, libChart("lib", "1.0.0"))
	private.User, private.Password = "reader", "s3cr3t"
	cases := []struct {
		name, repo, version, want string
	}{
		{name: "no repository", want: `dependency lib (1.x from ""): it is not vendored in charts/ and names no repository: vendor it with 'helm dependency build' before packaging`},
		{name: "a repository by name", repo: "@stable", want: "a repository named in Helm's repositories.yaml cannot be resolved by Sluice: use the repository's URL"},
		{name: "file outside a checkout", repo: "file://../lib", want: "a file:// dependency must be vendored in charts/ of a packaged chart"},
		{name: "no version in range", repo: libs.URL, version: ">=5.0.0", want: `dependency lib (>=5.0.0 from "` + libs.URL + `")`},
		{name: "http on another host", repo: "http://charts.example.com", want: "an http:// repository is only allowed on loopback"},
		{name: "unknown scheme", repo: "s3://bucket/charts", want: "unsupported repository"},
		{name: "credentials stay with the chart's host", repo: private.URL, want: "401 Unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c := libChart("app", "0.1.0")
			v := tc.version
			if v == "" {
				v = "1.x"
			}
			c.Dependencies = []*chart.Dependency{{Name: "lib", Version: v, Repository: tc.repo}}
			apps := repoWith(t, c)
			_, err := (&helm.Renderer{}).Render(context.Background(), helm.Request{
				Source: helm.Source{Repository: apps.URL, Name: "app"}, ReleaseName: "x", Namespace: "default",
				Credentials: &helm.Credentials{Username: "reader", Password: "s3cr3t"},
			})
			g.Expect(err).To(MatchError(ContainSubstring("chart app 0.1.0: dependency lib")))
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
			g.Expect(err.Error()).NotTo(ContainSubstring("s3cr3t"))
		})
	}

	// The same private repository as the chart's: the credentials are sent.
	g := NewWithT(t)
	c := libChart("app", "0.1.0")
	c.Dependencies = []*chart.Dependency{{Name: "lib", Version: "1.x", Repository: private.URL}}
	g.Expect(private.Add(c)).To(Succeed())
	res, err := (&helm.Renderer{}).Render(context.Background(), helm.Request{
		Source: helm.Source{Repository: private.URL, Name: "app"}, ReleaseName: "x", Namespace: "default",
		Credentials: &helm.Credentials{Username: "reader", Password: "s3cr3t"},
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(data(g, res.Objects, "x-lib")).To(HaveKeyWithValue("chart", "1.0.0"))
}
