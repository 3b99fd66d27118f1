package main

import (
	"flag"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestOptions_DefaultsAreValid(t *testing.T) {
	g := NewWithT(t)
	o := DefaultOptions()
	g.Expect(o.Validate()).To(Succeed())
	g.Expect(o.LeaderElect).To(BeTrue(), "leader election must be on by default")
	// Canary reconciles wait on I/O; GitSync's build trees and Pipelines'
	// push repositories: their worker pools differ (docs/scale.md).
	g.Expect(o.MaxConcurrentReconciles).To(Equal(32))
	g.Expect(o.MaxConcurrentGitReconciles).To(Equal(8))
}

func TestOptions_BindFlags(t *testing.T) {
	g := NewWithT(t)
	o := DefaultOptions()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.BindFlags(fs)
	g.Expect(fs.Parse([]string{
		"--leader-elect=false", "--log-level=debug", "--log-encoding=console",
		"--metrics-server=https://thanos:9090", "--default-provider=istio",
		"--watch-namespace=apps", "--leader-election-lease-duration=30s", "--cluster-name=prod-eu.1",
		"--metric-concurrency=3", "--gateway-api-implementation=istio",
		"--max-concurrent-reconciles=50", "--max-concurrent-git-reconciles=2",
	})).To(Succeed())
	g.Expect(o.MaxConcurrentReconciles).To(Equal(50))
	g.Expect(o.MaxConcurrentGitReconciles).To(Equal(2))
	g.Expect(o.GatewayAPIImpl).To(Equal("istio"))
	g.Expect(o.MetricConcurrency).To(Equal(3))
	g.Expect(o.ClusterName).To(Equal("prod-eu.1"))
	g.Expect(o.LeaderElect).To(BeFalse())
	g.Expect(o.LogLevel).To(Equal("debug"))
	g.Expect(o.LogEncoding).To(Equal("console"))
	g.Expect(o.MetricsServer).To(Equal("https://thanos:9090"))
	g.Expect(o.DefaultProvider).To(Equal("istio"))
	g.Expect(o.WatchNamespace).To(Equal("apps"))
	g.Expect(o.LeaseDuration).To(Equal(30 * time.Second))
	g.Expect(o.Validate()).To(Succeed())
}

func TestOptions_Validate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Options)
		wantErr string
	}{
		{name: "unknown log level", change: func(o *Options) { o.LogLevel = "loud" }, wantErr: "--log-level must be debug, info or error"},
		{name: "unknown log encoding", change: func(o *Options) { o.LogEncoding = "xml" }, wantErr: "--log-encoding must be json or console"},
		{name: "metrics server not a URL", change: func(o *Options) { o.MetricsServer = "prometheus:9090" }, wantErr: "--metrics-server must be an http:// or https:// URL"},
		{name: "metrics server with credentials", change: func(o *Options) { o.MetricsServer = "https://admin:hunter2@prometheus:9090" }, wantErr: "must not carry credentials"},
		{name: "empty default provider", change: func(o *Options) { o.DefaultProvider = "" }, wantErr: "--default-provider must not be empty"},
		{name: "lease shorter than renew deadline", change: func(o *Options) { o.LeaseDuration = 5 * time.Second }, wantErr: "lease-duration > renew-deadline"},
		{name: "zero QPS", change: func(o *Options) { o.KubeAPIQPS = 0 }, wantErr: "--kube-api-qps"},
		{name: "cluster name with a slash", change: func(o *Options) { o.ClusterName = "eu/prod" }, wantErr: "--cluster-name must be"},
		{name: "promotion without an author email", change: func(o *Options) { o.EnablePromotion, o.PromotionAuthorEmail = true, "sluice" }, wantErr: "--enable-promotion needs"},
		{name: "promotion without an author name", change: func(o *Options) { o.EnablePromotion, o.PromotionAuthorName = true, " " }, wantErr: "--enable-promotion needs"},
		{name: "cluster name too long", change: func(o *Options) { o.ClusterName = strings.Repeat("c", 64) }, wantErr: "--cluster-name must be"},
		{name: "unknown gateway api implementation", change: func(o *Options) { o.GatewayAPIImpl = "haproxy" }, wantErr: `--gateway-api-implementation: unknown Gateway API implementation "haproxy": use one of traefik, envoy-gateway, istio, cilium, kong, nginx-gateway-fabric`},
		{name: "metric concurrency zero", change: func(o *Options) { o.MetricConcurrency = 0 }, wantErr: "--metric-concurrency must be at least 1"},
		{name: "no canary workers", change: func(o *Options) { o.MaxConcurrentReconciles = 0 }, wantErr: "--max-concurrent-reconciles must be at least 1"},
		{name: "no git workers", change: func(o *Options) { o.MaxConcurrentGitReconciles = 0 }, wantErr: "--max-concurrent-git-reconciles must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			o := DefaultOptions()
			tt.change(&o)
			err := o.Validate()
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			g.Expect(err.Error()).NotTo(ContainSubstring("hunter2"), "errors must not echo credentials")
		})
	}
}

func TestOptions_ValidateReportsEveryError(t *testing.T) {
	g := NewWithT(t)
	o := DefaultOptions()
	o.LogLevel, o.LogEncoding = "loud", "xml"
	err := o.Validate()
	g.Expect(err).To(MatchError(ContainSubstring("--log-level")))
	g.Expect(err).To(MatchError(ContainSubstring("--log-encoding")))
}
