// Command demo is `make demo`: a whole canary release on a local stack
// (kube-apiserver and etcd, kube-controller-manager, kube-scheduler, kwok
// fake nodes, Traefik, Prometheus, a Git server), narrated as it happens.
//
// It commits an app and its Canary to a local Git repository, points the
// real sluice manager at it with --git-url, sends live traffic through
// Traefik, then releases a healthy version (promoted step by step) and a
// faulty one (rolled back), and tears everything down.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sluice-cd/sluice/e2e/stack"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// Demo settings: what the user sees is set here.
const (
	namespace = "demo"
	app       = "podinfo"
	rps       = 40
)

func main() {
	keep := flag.Bool("keep", false, "keep the stack's files (logs, kubeconfig) after the demo")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := newPrinter(os.Stdout)
	if err := run(ctx, p, *keep); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			p.fail("interrupted: everything started has been stopped")
			os.Exit(130)
		}
		p.fail(err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context, p *printer, keep bool) (err error) {
	start := time.Now()
	p.title("Sluice demo: a canary release on a local cluster")
	p.say("Everything runs on this machine, on 127.0.0.1: a real kube-apiserver and etcd, kube-controller-manager,")
	p.say("kube-scheduler, fake nodes (kwok), Traefik as the data plane, Prometheus, a Git server, and the sluice manager.")
	p.blank()

	p.step("Starting the stack")
	s, err := stack.Start(ctx, stack.Options{})
	if err != nil {
		return fmt.Errorf("the stack did not start: %w", err)
	}
	s.KeepDir = keep
	defer func() {
		p.step("Tearing down (sluice, pods, Prometheus, Traefik, kwok, scheduler, controller-manager, kube-apiserver, etcd)")
		s.Stop()
		stack.CleanupBuild()
		if keep {
			p.say("Logs and kubeconfig kept in %s", s.Dir)
		}
		if err == nil {
			p.done("Done in %s.", time.Since(start).Round(time.Second))
		}
	}()
	p.ok("control plane, Traefik (gateway %s/%s) and Prometheus are up (%s)", stack.GatewayNamespace, stack.GatewayName, time.Since(start).Round(100*time.Millisecond))

	git, err := testenv.StartGitServer("", "", "")
	if err != nil {
		return err
	}
	defer git.Close()
	repo, err := git.NewRepo("platform")
	if err != nil {
		return err
	}
	host := app + "." + namespace + ".example.com"
	files, err := manifests(host, release{Version: "1.0.0"})
	if err != nil {
		return err
	}
	sha, err := repo.Write("podinfo 1.0.0 with its Canary", files)
	if err != nil {
		return err
	}
	p.step("A Git repository with the app")
	p.say("%s", repo.URL)
	p.tree(files)
	p.say("commit %s  %q", sha[:7], "podinfo 1.0.0 with its Canary")
	p.say("The Canary (Gateway API, through Traefik): every %s move %d%% more traffic to a new version, up to %d%%,", interval, stepWeight, maxWeight)
	p.say("while its success rate stays >= %d%% and its p99 latency <= %d ms; %d failed checks roll it back.", minSuccess, maxLatency, threshold)

	p.step("Starting sluice, pointed at the repository")
	p.cmd("sluice --git-url=%s --git-path=apps --git-interval=2s", repo.URL)
	if _, err := s.StartManager(ctx, "--git-url="+repo.URL, "--git-path=apps", "--git-interval=2s",
		"--gitsync-namespace="+stack.ManagerNamespace, "--log-level=info"); err != nil {
		return err
	}
	w := newWatcher(s, p, namespace, app)
	if err := w.initialized(ctx, 3*time.Minute); err != nil {
		return err
	}

	load, err := s.StartLoad(ctx, stack.LoadOptions{Host: host, RPS: rps, Duration: 15 * time.Minute})
	if err != nil {
		return err
	}
	defer load.Stop()
	w.load = load
	p.step("Live traffic: %d requests/s through Traefik, Host: %s", rps, host)
	if err := w.serving(ctx, "1.0.0", time.Minute); err != nil {
		return err
	}

	good := release{Version: "1.1.0", LatencyMS: 5}
	if err := w.release(ctx, repo, host, good, "a healthy release", true); err != nil {
		return err
	}
	bad := release{Version: "1.2.0", ErrorRate: 0.2, LatencyMS: 5}
	if err := w.release(ctx, repo, host, bad, "a faulty release: one request in five fails", false); err != nil {
		return err
	}
	p.blank()
	p.say("The primary still serves %s. Every step above was decided by the sluice manager from the Canary's", good.Version)
	p.say("status and Prometheus; a commit was the only action. Next: `make test` runs every test, and docs/")
	p.say("explains the Canary API, routers, metrics, webhooks, GitSync, the chart and `kubectl sluice`.")
	return nil
}
