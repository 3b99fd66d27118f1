package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// GlobalNotifier is a notifier the manager's flags configure, as Flagger's
// -slack-url and -msteams-url did: it receives every event of the Canaries
// that have no analysis.alerts. Its webhook URL, a credential, is read from
// a file (a mounted Secret), never from a flag value that the process list
// would show; the file is read at each delivery, so a rotated Secret takes
// effect without a restart.
type GlobalNotifier struct {
	// Type is slack or msteams.
	Type string
	// AddressFile holds the webhook URL.
	AddressFile string
	// Channel and Username are Slack's (defaults DefaultChannel and DefaultUsername).
	Channel  string
	Username string
}

// globalNamespace marks the jobs of global notifiers: no AlertProvider can
// live in a namespace with an empty name.
const globalNamespace = ""

// key names a global notifier in jobs and logs.
func (g GlobalNotifier) key() types.NamespacedName {
	return types.NamespacedName{Namespace: globalNamespace, Name: "--" + g.Type + "-url-file"}
}

// maxAddressFile bounds the read of an address file: a URL, not a blob.
const maxAddressFile = 4 << 10

// validateGlobals checks the global notifiers at start, so that a typo in
// a flag fails the manager rather than every delivery.
func validateGlobals(gs []GlobalNotifier) error {
	seen := map[string]bool{}
	var errs []error
	for _, g := range gs {
		if g.Type != "slack" && g.Type != "msteams" {
			errs = append(errs, fmt.Errorf("notify: global notifier type %q: only slack and msteams are set by flags (use an AlertProvider and --default-alert-provider for the others)", g.Type))
		}
		if seen[g.Type] {
			errs = append(errs, fmt.Errorf("notify: two global %s notifiers", g.Type))
		}
		seen[g.Type] = true
		if _, err := readAddressFile(g.AddressFile); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// readAddressFile reads a webhook URL from a file. Its errors name the file,
// never its content.
func readAddressFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("notify: failed to open the address file: %w", err)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, maxAddressFile+1))
	if err != nil {
		return "", fmt.Errorf("notify: failed to read the address file %s: %w", path, err)
	}
	if len(data) > maxAddressFile {
		return "", fmt.Errorf("notify: the address file %s is larger than %d bytes: it must hold one URL", path, maxAddressFile)
	}
	addr := strings.TrimSpace(string(data))
	if addr == "" {
		return "", fmt.Errorf("notify: the address file %s is empty", path)
	}
	return addr, nil
}

// globalJobs are the jobs of the global notifiers for an event.
func (d *Dispatcher) globalJobs(e Event) []job {
	jobs := make([]job, 0, len(d.opts.Globals))
	for _, g := range d.opts.Globals {
		jobs = append(jobs, job{provider: g.key(), alert: "global", event: e})
	}
	return jobs
}

// globalNotifier builds the notifier of a global job, or reports that key
// is no global notifier's.
func (d *Dispatcher) globalNotifier(ctx context.Context, key types.NamespacedName) (Notifier, string, bool, error) {
	if key.Namespace != globalNamespace {
		return nil, "", false, nil
	}
	for _, g := range d.opts.Globals {
		if g.key() != key {
			continue
		}
		addr, err := readAddressFile(g.AddressFile)
		if err != nil {
			return nil, g.Type, true, err
		}
		p := &sluicev1beta1.AlertProvider{Spec: sluicev1beta1.AlertProviderSpec{Type: g.Type, Channel: g.Channel, Username: g.Username, Address: addr}}
		p.Name = key.Name
		n, err := d.newNotifier(ctx, nil, p, WithClients(d.opts.Clients), WithTimeout(d.opts.Timeout))
		return n, g.Type, true, err
	}
	return nil, "", true, fmt.Errorf("notify: no global notifier %s", key.Name)
}
