package promotion

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// BundleID derives a bundle's id from its images: the sources' names and
// digests, so a tag moved to the same digest is the same bundle, and the
// same images found twice never make two bundles.
func BundleID(images []sluicev1beta1.BundleImage) string {
	h := sha256.New()
	for _, im := range images {
		fmt.Fprintf(h, "%s\x00%s\x00%s\n", im.Source, im.Repository, im.Digest)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// scan turns the latest images into a bundle when every source has one,
// and reports the sources that could not be scanned.
func (x *decider) scan() {
	images := make([]sluicev1beta1.BundleImage, 0, len(x.p.Spec.Sources))
	complete := true
	for _, src := range x.p.Spec.Sources {
		r, ok := x.o.Images[src.Name]
		switch {
		case !ok:
			complete = false
		case r.Err != nil:
			complete = false
			x.problem(r.Err.Reason, fmt.Sprintf("source %s (%s): %s", src.Name, src.Image, r.Err.Message))
		case r.Image.Digest == "":
			complete = false
		default:
			images = append(images, sluicev1beta1.BundleImage{
				Source: src.Name, Repository: r.Image.Repository, Tag: r.Image.Tag, Digest: r.Image.Digest,
			})
		}
	}
	if !complete {
		return
	}
	slices.SortFunc(images, func(a, b sluicev1beta1.BundleImage) int { return strings.Compare(a.Source, b.Source) })
	id := BundleID(images)
	if x.bundleIndex(id) >= 0 {
		return
	}
	x.d.Status.Bundles = append(x.d.Status.Bundles, sluicev1beta1.Bundle{
		ID: id, Images: images, ConfigRevision: truncate(x.o.ConfigRevision, 512), CreatedAt: metav1.NewTime(x.now),
	})
	x.event(false, "NewBundle", fmt.Sprintf("new bundle %s: %s", id, describeImages(images)))
}

// bundleIndex is the position of a bundle in status.bundles (its age:
// later is newer), -1 when unknown.
func (x *decider) bundleIndex(id string) int {
	if id == "" {
		return -1
	}
	return slices.IndexFunc(x.d.Status.Bundles, func(b sluicev1beta1.Bundle) bool { return b.ID == id })
}

func (x *decider) bundle(id string) (sluicev1beta1.Bundle, bool) {
	i := x.bundleIndex(id)
	if i < 0 {
		return sluicev1beta1.Bundle{}, false
	}
	return x.d.Status.Bundles[i], true
}

// pruneBundles drops the oldest bundles that no stage holds (as current or
// at its gate) beyond the limit. History entries keep the ids of dropped
// bundles; a rollback to one of those is refused.
func (x *decider) pruneBundles() {
	held := map[string]bool{}
	for _, st := range x.d.Status.Stages {
		held[st.Bundle] = true
		if st.Gate != nil {
			held[st.Gate.Bundle] = true
		}
	}
	bundles := x.d.Status.Bundles
	for len(bundles) > sluicev1beta1.PipelineBundleLimit {
		i := slices.IndexFunc(bundles, func(b sluicev1beta1.Bundle) bool { return !held[b.ID] })
		if i < 0 {
			break
		}
		bundles = slices.Delete(bundles, i, i+1)
	}
	x.d.Status.Bundles = bundles
}

// describeImages is "web 1.1.0, worker 2.0.1" for messages.
func describeImages(images []sluicev1beta1.BundleImage) string {
	parts := make([]string, 0, len(images))
	for _, im := range images {
		parts = append(parts, im.Source+" "+im.Tag)
	}
	return strings.Join(parts, ", ")
}

// commitMessage is the message of a write, without trailers (the Git
// writer adds the provenance trailers from the Write's fields).
func commitMessage(w Write) string {
	verb := "promote"
	if w.Rollback {
		verb = "roll back"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s to %s\n\n", verb, describeImages(w.Bundle.Images), w.Stage)
	fmt.Fprintf(&b, "Bundle %s:\n", w.Bundle.ID)
	for _, im := range w.Bundle.Images {
		fmt.Fprintf(&b, "  %s: %s:%s@%s\n", im.Source, im.Repository, im.Tag, im.Digest)
	}
	switch {
	case w.Rollback:
		b.WriteString("Rolled back on request (sluice.dev/rollback-to).\n")
	case w.FromStage == "":
		b.WriteString("Found in the registry.\n")
	default:
		fmt.Fprintf(&b, "Verified in %s by %s.\n", w.FromStage, w.VerifiedBy)
	}
	return b.String()
}
