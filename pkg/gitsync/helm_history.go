package gitsync

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The objects of each healthy release of a chart are kept in a Secret
// owned by the GitSync, so that a failed upgrade can be rolled back after a
// restart, and exactly to what ran. A Secret and not a ConfigMap: values
// read from Secrets are rendered into the objects.
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;update;delete

const (
	// HelmHistoryLabel on a release Secret names its GitSync (when the
	// name fits a label value), for kubectl get secrets -l.
	HelmHistoryLabel = "gitsync.sluice.dev/helm-history"
	// helmRevisionAnnotation is the release's revision.
	helmRevisionAnnotation = "gitsync.sluice.dev/helm-revision"
	// helmReleaseType is the type of the release Secrets.
	helmReleaseType corev1.SecretType = "sluice.dev/helm-release"
	// helmReleaseKey holds the gzip of the JSON list of the objects.
	helmReleaseKey = "objects.json.gz"
	// maxReleaseSecret stays under the 1 MiB an object may have in etcd,
	// with room for the metadata.
	maxReleaseSecret = 1000 << 10
	// maxReleaseObjects bounds what a stored release may decompress to.
	maxReleaseObjects = 64 << 20
)

// errReleaseTooLarge is returned by storeRelease for a release whose
// compressed objects do not fit a Secret: it cannot be rolled back to.
var errReleaseTooLarge = errors.New("the compressed objects of the release are over 1000 KiB, more than a Secret holds")

// releaseSecretName is sluice-helm-<gitsync>-v<revision>, shortened with a
// hash for long GitSync names (a Secret's name has at most 253 characters).
func releaseSecretName(gitSync string, revision int32) string {
	suffix := "-v" + strconv.Itoa(int(revision))
	name := "sluice-helm-" + gitSync
	if len(name)+len(suffix) > 253 {
		sum := sha256.Sum256([]byte(gitSync))
		name = name[:200] + "-" + hex.EncodeToString(sum[:4])
	}
	return name + suffix
}

// encodeRelease is the gzip of the JSON list of the objects.
func encodeRelease(objs []*unstructured.Unstructured) ([]byte, error) {
	list := make([]map[string]any, len(objs))
	for i, o := range objs {
		list[i] = o.Object
	}
	raw, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("failed to encode the release: %w", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("failed to compress the release: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("failed to compress the release: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeRelease reverses encodeRelease, reading at most maxReleaseObjects.
func decodeRelease(data []byte) ([]*unstructured.Unstructured, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("failed to decompress the release: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxReleaseObjects+1))
	if err != nil {
		return nil, fmt.Errorf("failed to decompress the release: %w", err)
	}
	if len(raw) > maxReleaseObjects {
		return nil, fmt.Errorf("the release decompresses to more than %d bytes", maxReleaseObjects)
	}
	var list []map[string]any
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("failed to decode the release: %w", err)
	}
	objs := make([]*unstructured.Unstructured, len(list))
	for i, o := range list {
		objs[i] = &unstructured.Unstructured{Object: o}
	}
	return objs, nil
}

// storeRelease writes the objects of a healthy release into its Secret
// (created, or replaced when a status write was lost after an earlier store).
// deleteHooks, when not empty, is the release's encoded delete hooks
// (helm_delete_hooks.go).
func (r *GitSyncReconciler) storeRelease(ctx context.Context, gs *sluicev1beta1.GitSync, revision int32, objs []*unstructured.Unstructured, deleteHooks []byte) error {
	data, err := encodeRelease(objs)
	if err != nil {
		return err
	}
	if len(data)+len(deleteHooks) > maxReleaseSecret {
		return errReleaseTooLarge
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   gs.Namespace,
			Name:        releaseSecretName(gs.Name, revision),
			Annotations: map[string]string{helmRevisionAnnotation: strconv.Itoa(int(revision))},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: sluicev1beta1.GroupVersion.String(), Kind: "GitSync", Name: gs.Name, UID: gs.UID, Controller: ptr.To(true),
			}},
		},
		Type: helmReleaseType,
		Data: map[string][]byte{helmReleaseKey: data},
	}
	if len(deleteHooks) > 0 {
		s.Data[deleteHooksKey] = deleteHooks
	}
	if len(gs.Name) <= 63 {
		s.Labels = map[string]string{HelmHistoryLabel: gs.Name}
	}
	err = r.Client.Create(ctx, s)
	if apierrors.IsAlreadyExists(err) {
		err = r.Client.Update(ctx, s)
	}
	if err != nil {
		return fmt.Errorf("failed to write Secret %s: %w", s.Name, err)
	}
	return nil
}

// loadRelease reads the objects of a release back. They must hash to the
// digest recorded in status (which only Sluice writes): a Secret edited or
// planted by someone else is refused rather than applied.
func (r *GitSyncReconciler) loadRelease(ctx context.Context, gs *sluicev1beta1.GitSync, rel sluicev1beta1.GitSyncHelmRelease) ([]*unstructured.Unstructured, error) {
	name := releaseSecretName(gs.Name, rel.Revision)
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: gs.Namespace, Name: name}, s); err != nil {
		return nil, fmt.Errorf("failed to read Secret %s: %w", name, err)
	}
	if !metav1.IsControlledBy(s, gs) {
		return nil, fmt.Errorf("secret %s is not owned by this GitSync", name)
	}
	objs, err := decodeRelease(s.Data[helmReleaseKey])
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	digest, err := Digest(objs)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	if digest != rel.Digest {
		return nil, fmt.Errorf("secret %s holds objects of digest %s, not the %s of revision %d", name, digest, rel.Digest, rel.Revision)
	}
	return objs, nil
}

// deleteReleases deletes the Secrets of releases dropped from the history.
// A failure is only logged by the caller: the owner reference lets the
// garbage collector remove them with the GitSync.
func (r *GitSyncReconciler) deleteReleases(ctx context.Context, gs *sluicev1beta1.GitSync, revisions []int32) error {
	var errs []error
	for _, rev := range revisions {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: gs.Namespace, Name: releaseSecretName(gs.Name, rev)}}
		if err := r.Client.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("failed to delete Secret %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// lastDeployed is the healthy release running (or rolled back to), or nil.
func lastDeployed(history []sluicev1beta1.GitSyncHelmRelease) *sluicev1beta1.GitSyncHelmRelease {
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].Status == sluicev1beta1.GitSyncHelmReleaseDeployed {
			return &history[i]
		}
	}
	return nil
}

// nextRevision is one more than the highest revision of the history.
func nextRevision(history []sluicev1beta1.GitSyncHelmRelease) int32 {
	var top int32
	for _, h := range history {
		top = max(top, h.Revision)
	}
	return top + 1
}

// findRelease returns the entry of a revision, or nil.
func findRelease(history []sluicev1beta1.GitSyncHelmRelease, revision int32) *sluicev1beta1.GitSyncHelmRelease {
	for i := range history {
		if history[i].Revision == revision {
			return &history[i]
		}
	}
	return nil
}

// trimHistory keeps at most max entries, dropping the oldest, but never
// the Deployed release (what a rollback goes back to) nor keep (the
// release under remediation). It returns the revisions dropped.
func trimHistory(history []sluicev1beta1.GitSyncHelmRelease, maxEntries int, keep int32) ([]sluicev1beta1.GitSyncHelmRelease, []int32) {
	maxEntries = max(maxEntries, 1)
	var deployed int32
	if d := lastDeployed(history); d != nil {
		deployed = d.Revision
	}
	excess := len(history) - maxEntries
	var out []sluicev1beta1.GitSyncHelmRelease
	var dropped []int32
	for _, h := range history {
		if excess > 0 && h.Revision != deployed && h.Revision != keep {
			dropped = append(dropped, h.Revision)
			excess--
			continue
		}
		out = append(out, h)
	}
	return out, dropped
}
