package gitsync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// ReasonVerificationFailed is the Ready reason when the fetched revision is
// not signed by a trusted key of spec.verify (or the keys cannot be read);
// nothing was applied or pruned.
const ReasonVerificationFailed = "VerificationFailed"

// Reasons of the SourceVerified condition, as Flux's source-controller.
const (
	ReasonVerified               = "Succeeded"
	ReasonInvalidCommitSignature = "InvalidCommitSignature"
	ReasonInvalidTagSignature    = "InvalidTagSignature"
	// ReasonVerificationError: the keys could not be read.
	ReasonVerificationError = "VerificationError"
)

// verifySource checks the signatures of the fetched revision against the
// keys of spec.verify and sets SourceVerified. It runs at every sync, even
// when the Fetcher reused its checkout: a change of the key Secret (a key
// removed or revoked) takes effect at the same revision. It reads one
// Secret and one or two objects of the local checkout, and checks one or
// two signatures: cheap next to the build and the apply.
func (r *GitSyncReconciler) verifySource(ctx context.Context, gs *sluicev1beta1.GitSync, co Checkout, status *sluicev1beta1.GitSyncStatus) error {
	if gs.Spec.Verify == nil {
		apimeta.RemoveStatusCondition(&status.Conditions, sluicev1beta1.SourceVerifiedCondition)
		return nil
	}
	keys, err := r.verificationKeys(ctx, gs)
	if err == nil {
		var verified []string
		verified, err = verifyCheckout(co, SelectRef(gs.Spec.Ref), gs.VerifyModeOrDefault(), keys)
		if err == nil {
			setCondition(status, gs, sluicev1beta1.SourceVerifiedCondition, metav1.ConditionTrue, ReasonVerified,
				truncate("verified the signature of "+strings.Join(verified, " and ")))
			return nil
		}
	}
	reason := ReasonVerificationError
	var se *signatureError
	if errors.As(err, &se) {
		reason = ReasonInvalidCommitSignature
		if se.tag {
			reason = ReasonInvalidTagSignature
		}
	}
	err = fmt.Errorf("signature verification of %s failed: %w", co.Revision, err)
	setCondition(status, gs, sluicev1beta1.SourceVerifiedCondition, metav1.ConditionFalse, reason, truncate(err.Error()))
	// A bad signature or unusable keys wait for a new commit or a changed
	// Secret (seen at the next interval); a Secret that cannot be read is
	// retried with backoff.
	return fail(ReasonVerificationFailed, isUnverifiable(err), err)
}

// verificationKeys reads the Secret of spec.verify.secretRef.
func (r *GitSyncReconciler) verificationKeys(ctx context.Context, gs *sluicev1beta1.GitSync) (*trustedKeys, error) {
	name := gs.Spec.Verify.SecretRef.Name
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: gs.Namespace, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("the Secret %s of spec.verify.secretRef is not found in namespace %s", name, gs.Namespace)
		}
		return nil, fmt.Errorf("failed to read the Secret %s of spec.verify.secretRef: %w", name, err)
	}
	return parseTrustedKeys(s)
}
