// Package cli is the kubectl plugin `kubectl sluice`: it lists, explains,
// watches and drives Canaries and GitSyncs on a cluster, and converts
// Flagger manifests to Sluice's API. cmd/kubectl-sluice only wires it to the
// process; every command lives here so that it can be tested against a real
// API server.
package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// ExitError carries the process exit code of a command that ran but did not
// end well (a watched Canary failed, a wait timed out).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exit codes, documented in docs/kubectl.md.
const (
	// ExitFailed is returned for any error, and when a watched Canary fails or stalls.
	ExitFailed = 1
	// ExitTimeout is returned when --timeout passes before the awaited state.
	ExitTimeout = 2
)

// ExitCode is the process exit code for an error returned by a command.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitFailed
}

// Options are the settings and connections shared by every command.
type Options struct {
	ConfigFlags *genericclioptions.ConfigFlags
	Streams     genericiooptions.IOStreams
	// Now is the clock (tests pin it for stable ages).
	Now func() time.Time

	scheme *runtime.Scheme
	client client.WithWatch
}

// NewOptions returns options with the standard kubeconfig flags.
func NewOptions(streams genericiooptions.IOStreams) *Options {
	scheme := runtime.NewScheme()
	if err := sluicev1beta1.AddToScheme(scheme); err != nil {
		panic(err) // the scheme is static: this cannot fail at run time
	}
	return &Options{
		ConfigFlags: genericclioptions.NewConfigFlags(true),
		Streams:     streams,
		Now:         time.Now,
		scheme:      scheme,
	}
}

// NewRootCommand builds `kubectl sluice` and its subcommands.
func NewRootCommand(streams genericiooptions.IOStreams, version string) *cobra.Command {
	return newRoot(NewOptions(streams), version)
}

func newRoot(o *Options, version string) *cobra.Command {
	streams := o.Streams
	cmd := &cobra.Command{
		Use:   "kubectl-sluice",
		Short: "Inspect, watch and drive Sluice Canaries and GitSyncs",
		Long: `kubectl sluice lists, explains and watches Sluice Canaries and GitSyncs,
drives releases (promote, abort, retry, suspend, resume, sync), and converts
Flagger manifests to Sluice's API.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl sluice"},
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	o.ConfigFlags.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(
		newGetCommand(o),
		newStatusCommand(o),
		newWatchCommand(o),
		newRequestCommand(o, requestPromote),
		newRequestCommand(o, requestAbort),
		newRequestCommand(o, requestRetry),
		newSuspendCommand(o, true),
		newSuspendCommand(o, false),
		newSyncCommand(o),
		newPromoteStageCommand(o),
		newRollbackStageCommand(o),
		newConvertCommand(o),
		newReportCommand(o),
		newDashboardCommand(o),
		newHelmCommand(o),
	)
	return cmd
}

// Client returns a client for the cluster of the kubeconfig flags.
func (o *Options) Client() (client.WithWatch, error) {
	if o.client != nil {
		return o.client, nil
	}
	cfg, err := o.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("failed to load the kubeconfig: %w", err)
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: o.scheme})
	if err != nil {
		return nil, fmt.Errorf("failed to create a client: %w", err)
	}
	o.client = c
	return c, nil
}

// Namespace is the namespace of the -n flag or of the kubeconfig context.
func (o *Options) Namespace() (string, error) {
	ns, _, err := o.ConfigFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("failed to read the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}

// getObject reads one Sluice object, with errors that say what to check.
func (o *Options) getObject(ctx context.Context, kind, name string, obj client.Object) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	ns, err := o.Namespace()
	if err != nil {
		return err
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		return explain(err, kind, ns, name)
	}
	return nil
}

// explain turns API errors into messages that say what to do.
func explain(err error, kind, ns, name string) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s %s not found in namespace %s: check the name, and the namespace (-n NAMESPACE): %w", kind, name, ns, err)
	case apimeta.IsNoMatchError(err):
		return fmt.Errorf("the Sluice CRDs (sluice.dev/v1beta1) are not installed in this cluster: install them (config/crd/bases) first: %w", err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("access to %s %s/%s denied: your user needs RBAC permissions on this sluice.dev resource: %w", kind, ns, name, err)
	}
	return fmt.Errorf("failed to read %s %s/%s: %w", kind, ns, name, err)
}
