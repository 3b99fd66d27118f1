package imagescan

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Order is the direction of an alphabetical or numerical policy. As in
// Flux's ImagePolicy, the latest tag is the last one in that order: Asc
// picks the greatest value, Desc the smallest.
type Order string

// The orders a policy accepts; the empty order means Asc.
const (
	Asc  Order = "asc"
	Desc Order = "desc"
)

// maxPatternLength bounds a user's regexp; Go's regexps run in linear time,
// but a long pattern still costs memory on every scan.
const maxPatternLength = 1024

// Policy selects the latest tag of a repository. It mirrors Flux's
// ImagePolicy (spec.policy and spec.filterTags) so that users who know Flux
// write the same thing: exactly one of SemVer, Alphabetical or Numerical,
// optionally after FilterTags.
type Policy struct {
	// SemVer picks the highest version within a range.
	SemVer *SemVerPolicy
	// Alphabetical orders the (extracted) tags as strings.
	Alphabetical *OrderPolicy
	// Numerical orders the (extracted) tags as numbers; values that are not
	// numbers are skipped.
	Numerical *OrderPolicy
	// FilterTags keeps only the tags matching a pattern and, with Extract,
	// orders them by a part of the tag (e.g. a timestamp).
	FilterTags *TagFilter
}

// SemVerPolicy picks the highest version satisfying Range.
type SemVerPolicy struct {
	// Range is a Masterminds semver constraint, e.g. ">=1.0.0 <2.0.0" or
	// "^1.2". Prereleases match only if the range names one (">=1.2.0-0").
	Range string
}

// OrderPolicy picks the last tag in Order.
type OrderPolicy struct {
	// Order is Asc (the default) or Desc.
	Order Order
}

// TagFilter keeps the tags that match Pattern. With Extract, the value
// compared by the policy is Extract expanded with the match's groups
// ($1, $name or ${name}), as Flux's filterTags.extract; without it, the
// whole tag.
type TagFilter struct {
	// Pattern is a Go regexp (RE2) matched against each tag.
	Pattern string
	// Extract is a template over Pattern's groups, e.g. "$ts".
	Extract string
}

// compiledPolicy is a validated Policy, ready to apply to tag lists.
type compiledPolicy struct {
	constraint *semver.Constraints
	order      Order
	numerical  bool
	pattern    *regexp.Regexp
	extract    string
}

// Validate reports whether the policy can be applied; a failure is an
// *Error with reason InvalidPolicy whose message tells the user what to
// write instead.
func (p Policy) Validate() error {
	_, err := p.compile()
	return err
}

// Latest returns the tag that the policy selects among tags, or an *Error
// with reason NoMatchingTag (recording how many tags were seen) or
// InvalidPolicy. It is pure, so a controller can test its choice without a
// registry.
func (p Policy) Latest(tags []string) (string, error) {
	cp, err := p.compile()
	if err != nil {
		return "", err
	}
	return cp.latest(tags)
}

func invalidPolicy(format string, args ...any) error {
	return &Error{Reason: ReasonInvalidPolicy, text: "invalid image policy: " + fmt.Sprintf(format, args...)}
}

func (p Policy) compile() (*compiledPolicy, error) {
	set := 0
	for _, present := range []bool{p.SemVer != nil, p.Alphabetical != nil, p.Numerical != nil} {
		if present {
			set++
		}
	}
	if set != 1 {
		return nil, invalidPolicy("set exactly one of semver, alphabetical or numerical (found %d)", set)
	}
	cp := &compiledPolicy{}
	switch {
	case p.SemVer != nil:
		r := strings.TrimSpace(p.SemVer.Range)
		if r == "" {
			return nil, invalidPolicy("semver.range is empty; write a range such as '>=1.0.0 <2.0.0' or '^1.2'")
		}
		c, err := semver.NewConstraint(r)
		if err != nil {
			return nil, invalidPolicy("semver range %q does not parse (%v); write a range such as '>=1.0.0 <2.0.0' or '^1.2'", r, err)
		}
		cp.constraint = c
	case p.Alphabetical != nil:
		o, err := checkOrder("alphabetical", p.Alphabetical.Order)
		if err != nil {
			return nil, err
		}
		cp.order = o
	default:
		o, err := checkOrder("numerical", p.Numerical.Order)
		if err != nil {
			return nil, err
		}
		cp.order, cp.numerical = o, true
	}
	if f := p.FilterTags; f != nil {
		if err := cp.compileFilter(f); err != nil {
			return nil, err
		}
	}
	return cp, nil
}

func checkOrder(kind string, o Order) (Order, error) {
	switch o {
	case "", Asc:
		return Asc, nil
	case Desc:
		return Desc, nil
	}
	return "", invalidPolicy("%s.order %q is not one of asc, desc", kind, string(o))
}

func (cp *compiledPolicy) compileFilter(f *TagFilter) error {
	if f.Pattern == "" {
		if f.Extract != "" {
			return invalidPolicy("filterTags.extract %q needs a filterTags.pattern with the groups it names", f.Extract)
		}
		return nil
	}
	if len(f.Pattern) > maxPatternLength {
		return invalidPolicy("filterTags.pattern is %d characters long; the limit is %d", len(f.Pattern), maxPatternLength)
	}
	rx, err := regexp.Compile(f.Pattern)
	if err != nil {
		return invalidPolicy("filterTags.pattern %q does not parse: %v", f.Pattern, err)
	}
	if err := checkTemplate(rx, f.Extract); err != nil {
		return err
	}
	cp.pattern, cp.extract = rx, f.Extract
	return nil
}

// checkTemplate rejects an extract template that names a group the pattern
// does not have: regexp.Expand would silently expand it to "", and every
// tag would then compare equal.
func checkTemplate(rx *regexp.Regexp, tmpl string) error {
	names := map[string]bool{}
	for i, n := range rx.SubexpNames() {
		names[strconv.Itoa(i)] = true
		if n != "" {
			names[n] = true
		}
	}
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '$' {
			continue
		}
		i++
		if i < len(tmpl) && tmpl[i] == '$' {
			continue
		}
		var name string
		if i < len(tmpl) && tmpl[i] == '{' {
			end := strings.IndexByte(tmpl[i:], '}')
			if end < 0 {
				return invalidPolicy("filterTags.extract %q has an unclosed ${", tmpl)
			}
			name = tmpl[i+1 : i+end]
			i += end
		} else {
			j := i
			for j < len(tmpl) && isNameByte(tmpl[j]) {
				j++
			}
			name = tmpl[i:j]
			i = j - 1
		}
		if name == "" {
			return invalidPolicy("filterTags.extract %q has a $ without a group name; write $name, ${name}, $1 or $$", tmpl)
		}
		if !names[name] {
			return invalidPolicy("filterTags.extract %q names group %q, which filterTags.pattern %q does not define; add (?P<%s>...) to the pattern", tmpl, name, rx.String(), name)
		}
	}
	return nil
}

func isNameByte(b byte) bool {
	return b == '_' || (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
}

// candidate is a tag and the value the policy compares.
type candidate struct {
	tag     string
	value   string
	version *semver.Version
	number  float64
}

func (cp *compiledPolicy) latest(tags []string) (string, error) {
	var cands []candidate
	for _, tag := range tags {
		value, ok := cp.filter(tag)
		if !ok {
			continue
		}
		c := candidate{tag: tag, value: value}
		switch {
		case cp.constraint != nil:
			v, err := parseVersion(value)
			if err != nil || !cp.constraint.Check(v) {
				continue
			}
			c.version = v
		case cp.numerical:
			n, err := strconv.ParseFloat(value, 64)
			if err != nil || math.IsNaN(n) {
				// NaN is neither less nor greater than anything: it would
				// make the order, and so the choice, depend on the listing.
				continue
			}
			c.number = n
		}
		cands = append(cands, c)
	}
	if len(cands) == 0 {
		return "", &Error{
			Reason:   ReasonNoMatchingTag,
			TagsSeen: len(tags),
			text:     fmt.Sprintf("none of the %d tags matches the image policy", len(tags)),
		}
	}
	// Ties (1.0.0 and v1.0.0, equal numbers) are broken by the tag itself,
	// so that the same list always yields the same tag.
	sort.SliceStable(cands, func(i, j int) bool { return cp.less(cands[i], cands[j]) })
	return cands[len(cands)-1].tag, nil
}

func (cp *compiledPolicy) filter(tag string) (string, bool) {
	if cp.pattern == nil {
		return tag, true
	}
	m := cp.pattern.FindStringSubmatchIndex(tag)
	if m == nil {
		return "", false
	}
	if cp.extract == "" {
		return tag, true
	}
	v := string(cp.pattern.ExpandString(nil, cp.extract, tag, m))
	return v, v != ""
}

// less orders candidates so that the latest is last.
func (cp *compiledPolicy) less(a, b candidate) bool {
	switch {
	case cp.constraint != nil:
		if c := a.version.Compare(b.version); c != 0 {
			return c < 0
		}
	case cp.numerical:
		if a.number != b.number {
			return (a.number < b.number) == (cp.order == Asc)
		}
	default:
		if a.value != b.value {
			return (a.value < b.value) == (cp.order == Asc)
		}
	}
	return a.tag < b.tag
}

// parseVersion accepts MAJOR.MINOR.PATCH[-pre][+meta], with an optional
// leading "v". It is stricter than Flux, which also reads "1" or "20240101"
// as versions: a date or build-number tag would then be picked as a huge
// major version by any ">=" range.
func parseVersion(s string) (*semver.Version, error) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v"))
	if err != nil {
		return nil, fmt.Errorf("tag %q is not a semantic version: %w", s, err)
	}
	return v, nil
}
