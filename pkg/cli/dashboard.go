package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/dashboard"
)

type dashboardOptions struct {
	*Options
	port    int
	allNS   bool
	started func(url string) // tests learn the URL of --port 0
}

func newDashboardCommand(o *Options) *cobra.Command {
	d := &dashboardOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the web dashboard on 127.0.0.1 with your kubeconfig",
		Long: `dashboard serves Sluice's web dashboard on 127.0.0.1 only. Every read and
action uses your kubeconfig's credentials, so the page shows exactly what
your RBAC allows; nothing is exposed beyond this machine's loopback.
The overview starts in the namespace of -n (or all namespaces with -A).
See docs/dashboard.md.`,
		Example: "  kubectl sluice dashboard\n  kubectl sluice dashboard -n test --port 0",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return d.run(cmd.Context())
		},
	}
	cmd.Flags().IntVar(&d.port, "port", 3100, "Port on 127.0.0.1 (0 picks a free one)")
	cmd.Flags().BoolVarP(&d.allNS, "all-namespaces", "A", false, "Start the overview with all namespaces (the default without -n)")
	return cmd
}

func (d *dashboardOptions) run(ctx context.Context) error {
	if d.port < 0 || d.port > 65535 {
		return fmt.Errorf("--port must be between 0 and 65535 (got %d)", d.port)
	}
	c, err := d.dashboardClient()
	if err != nil {
		return err
	}
	ns := ""
	if !d.allNS && d.ConfigFlags.Namespace != nil && *d.ConfigFlags.Namespace != "" {
		ns = *d.ConfigFlags.Namespace
	}
	// Actions and failed API requests are logged to stderr, like kubectl's warnings.
	log := funcr.New(func(prefix, args string) { fmt.Fprintln(d.Streams.ErrOut, prefix, args) }, funcr.Options{})
	srv, err := dashboard.New(dashboard.Options{Client: c, Act: Act, Namespace: ns, Log: log})
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(d.port)))
	if err != nil {
		return fmt.Errorf("failed to listen on 127.0.0.1:%d (is it in use? try --port 0): %w", d.port, err)
	}
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(d.Streams.Out, "Sluice dashboard: %s (Ctrl-C to stop)\n", url)
	if d.started != nil {
		d.started(url)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("the dashboard server stopped: %w", err)
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdown) // event streams end with their requests' contexts
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("the dashboard server stopped: %w", err)
		}
		return nil
	}
}

// dashboardClient is a client with the user's kubeconfig that also knows
// core/v1, for the events a detail page shows.
func (d *dashboardOptions) dashboardClient() (client.WithWatch, error) {
	cfg, err := d.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("failed to load the kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("failed to build the scheme: %w", err)
	}
	if err := sluicev1beta1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("failed to build the scheme: %w", err)
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("failed to create a client: %w", err)
	}
	return c, nil
}

// Act performs a dashboard action with the same rules and writes as the
// commands: promote/abort/retry set their annotation to the current time when
// the phase allows it, suspend/resume set spec.suspend, sync sets the sync
// request annotation.
func Act(ctx context.Context, c client.Client, a dashboard.Action) (string, error) {
	key := client.ObjectKey{Namespace: a.Namespace, Name: a.Name}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	annotate := func(obj client.Object, k string) error {
		return patchObject(ctx, c, obj, a.Kind, map[string]any{"metadata": map[string]any{"annotations": map[string]string{k: now}}})
	}
	switch a.Kind {
	case "Canary":
		cn := &sluicev1beta1.Canary{}
		if err := c.Get(ctx, key, cn); err != nil {
			return "", explain(err, "Canary", a.Namespace, a.Name)
		}
		switch a.Verb {
		case "suspend", "resume":
			return suspendObject(ctx, c, cn, "Canary", a.Verb == "suspend", cn.Spec.Suspend)
		}
		req, ok := map[string]request{"promote": requestPromote, "abort": requestAbort, "retry": requestRetry}[a.Verb]
		if !ok {
			return "", fmt.Errorf("unknown Canary action %q", a.Verb)
		}
		if why := req.allowed(cn); why != "" {
			return "", errors.New(why)
		}
		if err := annotate(cn, req.annotation); err != nil {
			return "", err
		}
		msg := fmt.Sprintf("canary %s/%s: %s requested", a.Namespace, a.Name, a.Verb)
		if cn.Spec.Suspend {
			msg += " (the Canary is suspended: it is handled once resumed)"
		}
		return msg, nil
	case "GitSync":
		gs := &sluicev1beta1.GitSync{}
		if err := c.Get(ctx, key, gs); err != nil {
			return "", explain(err, "GitSync", a.Namespace, a.Name)
		}
		switch a.Verb {
		case "suspend", "resume":
			return suspendObject(ctx, c, gs, "GitSync", a.Verb == "suspend", gs.Spec.Suspend)
		case "sync":
			if gs.Spec.Suspend {
				return "", fmt.Errorf("gitsync %s/%s is suspended, so it does not sync: resume it first", a.Namespace, a.Name)
			}
			if err := annotate(gs, sluicev1beta1.GitSyncSyncRequestedAnnotation); err != nil {
				return "", err
			}
			return fmt.Sprintf("gitsync %s/%s: sync requested", a.Namespace, a.Name), nil
		}
		return "", fmt.Errorf("unknown GitSync action %q", a.Verb)
	}
	return "", fmt.Errorf("unknown kind %q", a.Kind)
}

func suspendObject(ctx context.Context, c client.Client, obj client.Object, kind string, suspend, current bool) (string, error) {
	state := map[bool]string{true: "suspended", false: "resumed"}[suspend]
	if current == suspend {
		return fmt.Sprintf("%s %s/%s is already %s", kind, obj.GetNamespace(), obj.GetName(), state), nil
	}
	if err := patchObject(ctx, c, obj, kind, map[string]any{"spec": map[string]any{"suspend": suspend}}); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s/%s %s", kind, obj.GetNamespace(), obj.GetName(), state), nil
}

// patchObject applies a JSON merge patch (no conflict with the controller),
// like Options.mergePatch but with the caller's client.
func patchObject(ctx context.Context, c client.Client, obj client.Object, kind string, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("failed to encode the patch: %w", err)
	}
	if err := c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, data)); err != nil {
		return explain(err, kind, obj.GetNamespace(), obj.GetName())
	}
	return nil
}
