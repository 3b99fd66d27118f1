package promotion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/imagescan"
)

// maxScans bounds the scans kept in memory.
const maxScans = 4096

// scanEntry is the last scan of a source, kept until its interval is due.
type scanEntry struct {
	spec   string
	at     time.Time
	result ScanResult
}

// observe gathers what Decide needs: the sources' latest images (scanned
// when their interval is due, else the last scan) and each stage's Canary.
// nextScan is when the first source is due again. An error is a failure to
// read the API server, retried with backoff.
func (r *Reconciler) observe(ctx context.Context, p *sluicev1beta1.Pipeline, now time.Time) (Observation, time.Duration, error) {
	o := Observation{Images: map[string]ScanResult{}, Stages: map[string]StageObservation{}}
	if p.Spec.Suspend {
		return o, 0, nil
	}
	var nextScan time.Duration
	for i := range p.Spec.Sources {
		src := &p.Spec.Sources[i]
		res, next := r.scan(ctx, p, src, now)
		o.Images[src.Name] = res
		if nextScan == 0 || next < nextScan {
			nextScan = next
		}
	}
	rev, err := r.configRevision(ctx, p)
	if err != nil {
		return o, 0, err
	}
	o.ConfigRevision = rev
	for i := range p.Spec.Stages {
		s := &p.Spec.Stages[i]
		c, err := r.canary(ctx, p, s)
		if err != nil {
			return o, 0, err
		}
		st := statusOf(p, s.Name)
		o.Stages[s.Name] = StageObservation{Canary: c, PullRequest: r.observePullRequest(ctx, p, s, st),
			SoakChecks: r.soakChecks(ctx, s, st, c, now), Commit: r.lostCommit(ctx, p, s, st)}
	}
	return o, nextScan, nil
}

func scanKey(p *sluicev1beta1.Pipeline, source string) string {
	return string(p.UID) + "/" + source
}

// scan returns the source's latest image, scanning it when its interval is
// due (or its spec changed since the last scan), and when it is due next.
func (r *Reconciler) scan(ctx context.Context, p *sluicev1beta1.Pipeline, src *sluicev1beta1.PipelineSource, now time.Time) (ScanResult, time.Duration) {
	interval := DefaultScanInterval
	if src.Interval != nil && src.Interval.Duration > 0 {
		interval = src.Interval.Duration
	}
	specJSON, _ := json.Marshal(src)
	key := scanKey(p, src.Name)
	r.scansMu.Lock()
	e, ok := r.scans[key]
	r.scansMu.Unlock()
	if ok && e.spec == string(specJSON) && now.Sub(e.at) < interval {
		return e.result, e.at.Add(interval).Sub(now)
	}
	res := r.scanNow(ctx, p, src)
	r.scansMu.Lock()
	if r.scans == nil || len(r.scans) >= maxScans {
		// A bound rather than a leak of the scans of deleted Pipelines:
		// they are dropped all at once now and then, and the live
		// sources scan again.
		r.scans = map[string]scanEntry{}
	}
	r.scans[key] = scanEntry{spec: string(specJSON), at: now, result: res}
	r.scansMu.Unlock()
	return res, interval
}

func (r *Reconciler) scanNow(ctx context.Context, p *sluicev1beta1.Pipeline, src *sluicev1beta1.PipelineSource) ScanResult {
	log := ctrl.LoggerFrom(ctx).WithValues("source", src.Name, "image", src.Image)
	fail := func(reason, msg string) ScanResult {
		log.Info("Scan failed", "reason", reason, "message", msg)
		return ScanResult{Err: &Reason{Reason: reason, Message: msg}}
	}
	if src.Policy == nil {
		return fail(sluicev1beta1.PipelineReasonInvalidPolicy, "spec.sources[].policy is missing")
	}
	req := imagescan.Request{Repository: src.Image, Policy: policyOf(src.Policy)}
	if src.SecretRef != nil {
		s := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: src.SecretRef.Name}, s); err != nil {
			if apierrors.IsNotFound(err) {
				return fail(string(imagescan.ReasonInvalidCredentials), fmt.Sprintf("secret %s not found", src.SecretRef.Name))
			}
			return fail(sluicev1beta1.PipelineReasonRegistryUnreachable, fmt.Sprintf("failed to read secret %s: %v", src.SecretRef.Name, err))
		}
		creds, err := imagescan.CredentialsFromSecret(s)
		if err != nil {
			return fail(reasonOfScan(err), err.Error())
		}
		req.Credentials = creds
	}
	req.Insecure = r.InsecureLoopbackRegistries && loopbackRepository(src.Image)
	img, err := r.Scanner.Latest(ctx, req)
	if err != nil {
		return fail(reasonOfScan(err), err.Error())
	}
	log.V(1).Info("Scanned", "tag", img.Tag, "digest", img.Digest)
	return ScanResult{Image: Image{Repository: img.Repository, Tag: img.Tag, Digest: img.Digest}}
}

// reasonOfScan is the condition reason of a scan error: the scanner's own
// reasons are condition reasons already; anything else is a registry that
// could not be reached.
func reasonOfScan(err error) string {
	var se *imagescan.Error
	if errors.As(err, &se) && se.Reason != "" {
		return string(se.Reason)
	}
	return sluicev1beta1.PipelineReasonRegistryUnreachable
}

// policyOf turns the API's policy into the scanner's: semver, or a pattern
// (with extract) ordered alphabetically or numerically, greatest last.
func policyOf(pol *sluicev1beta1.ImagePolicy) imagescan.Policy {
	var p imagescan.Policy
	if pol.Pattern != "" {
		p.FilterTags = &imagescan.TagFilter{Pattern: pol.Pattern, Extract: pol.Extract}
	}
	switch {
	case pol.Semver != "":
		p.SemVer = &imagescan.SemVerPolicy{Range: pol.Semver}
	case pol.Order == sluicev1beta1.TagOrderNumerical:
		p.Numerical = &imagescan.OrderPolicy{Order: imagescan.Asc}
	default:
		p.Alphabetical = &imagescan.OrderPolicy{Order: imagescan.Asc}
	}
	return p
}

// loopbackRepository tells whether the repository's registry is this
// machine; only those may be scanned over plain HTTP.
func loopbackRepository(repo string) bool {
	r, err := name.NewRepository(repo)
	if err != nil {
		return false
	}
	h := r.RegistryStr()
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// canary reads a stage's Canary, from the manager's cluster or from the
// cluster of its canaryRef.kubeConfig; nil when it does not exist. A
// remote cluster that cannot be read (an unusable kubeconfig, a cluster
// down) is logged and only that stage reports CanaryNotFound: the other
// stages go on, and a stage on its way is read again at the poll interval.
func (r *Reconciler) canary(ctx context.Context, p *sluicev1beta1.Pipeline, s *sluicev1beta1.PipelineStage) (*sluicev1beta1.Canary, error) {
	ns := s.CanaryRef.Namespace
	if ns == "" {
		ns = p.Namespace
	}
	if s.CanaryRef.KubeConfig != nil {
		c, err := r.remoteCanary(ctx, p, s, ns)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Cannot read the stage's Canary", "stage", s.Name, "unusableKubeConfig", errors.Is(err, errUnusableKubeConfig))
			return nil, nil
		}
		return c, nil
	}
	c := &sluicev1beta1.Canary{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: s.CanaryRef.Name}, c); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("failed to get Canary %s/%s: %w", ns, s.CanaryRef.Name, err)
	}
	return c, nil
}

func statusOf(p *sluicev1beta1.Pipeline, stage string) *sluicev1beta1.PipelineStageStatus {
	for i := range p.Status.Stages {
		if p.Status.Stages[i].Name == stage {
			return &p.Status.Stages[i]
		}
	}
	return nil
}

// configRevision is the revision the first stage's GitSync applied, which a
// new bundle records for provenance; empty without a GitSync of the
// Pipeline's namespace.
func (r *Reconciler) configRevision(ctx context.Context, p *sluicev1beta1.Pipeline) (string, error) {
	if len(p.Spec.Stages) == 0 || p.Spec.Stages[0].Git.GitSyncRef == nil {
		return "", nil
	}
	ref := p.Spec.Stages[0].Git.GitSyncRef
	if ref.Namespace != "" && ref.Namespace != p.Namespace {
		return "", nil
	}
	gs := &sluicev1beta1.GitSync{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: ref.Name}, gs); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("failed to get GitSync %s/%s: %w", p.Namespace, ref.Name, err)
	}
	return gs.Status.LastAppliedRevision, nil
}
