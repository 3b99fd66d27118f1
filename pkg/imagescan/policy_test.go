package imagescan

import (
	"errors"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

var fixtureTags = []string{
	"1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0", "latest",
	"main-abc123-1700000100", "main-def456-1700000300", "main-0a0a0a-1700000200",
}

func TestPolicy_Latest(t *testing.T) {
	tsFilter := &TagFilter{Pattern: `^main-[a-f0-9]+-(?P<ts>[0-9]+)$`, Extract: "$ts"}
	tests := []struct {
		name   string
		policy Policy
		tags   []string
		want   string
	}{
		{name: "range below a major", policy: Policy{SemVer: &SemVerPolicy{Range: ">=1.0.0 <2.0.0"}}, want: "1.1.0"},
		{name: "open range takes the highest", policy: Policy{SemVer: &SemVerPolicy{Range: ">=1.0.0"}}, want: "2.0.0"},
		{name: "caret", policy: Policy{SemVer: &SemVerPolicy{Range: "^1.0"}}, want: "1.1.0"},
		{name: "prerelease excluded by a plain range", policy: Policy{SemVer: &SemVerPolicy{Range: ">=1.1.0 <2.0.0"}}, want: "1.1.0"},
		{name: "prerelease allowed when the range names one", policy: Policy{SemVer: &SemVerPolicy{Range: ">=1.2.0-0 <2.0.0"}}, want: "1.2.0-rc.1"},
		{name: "final release beats its prerelease", policy: Policy{SemVer: &SemVerPolicy{Range: ">=1.2.0-0"}}, tags: []string{"1.2.0-rc.1", "1.2.0", "1.2.0-rc.2"}, want: "1.2.0"},
		{name: "v prefix accepted", policy: Policy{SemVer: &SemVerPolicy{Range: "~1.4"}}, tags: []string{"v1.4.1", "v1.4.10", "v1.4.9"}, want: "v1.4.10"},
		{name: "dates are not versions", policy: Policy{SemVer: &SemVerPolicy{Range: ">=1.0.0"}}, tags: []string{"1.0.0", "20240101", "1700000000"}, want: "1.0.0"},
		{name: "semver ties broken by tag", policy: Policy{SemVer: &SemVerPolicy{Range: "1.0.0"}}, tags: []string{"v1.0.0", "1.0.0"}, want: "v1.0.0"},
		{name: "semver over an extracted value", policy: Policy{SemVer: &SemVerPolicy{Range: ">=1.0.0"}, FilterTags: &TagFilter{Pattern: `^app-(?P<v>.*)$`, Extract: "$v"}}, tags: []string{"app-1.0.0", "app-1.3.0", "other-9.0.0"}, want: "app-1.3.0"},
		{name: "numerical timestamp asc", policy: Policy{Numerical: &OrderPolicy{Order: Asc}, FilterTags: tsFilter}, want: "main-def456-1700000300"},
		{name: "numerical default order is asc", policy: Policy{Numerical: &OrderPolicy{}, FilterTags: tsFilter}, want: "main-def456-1700000300"},
		{name: "numerical desc picks the smallest", policy: Policy{Numerical: &OrderPolicy{Order: Desc}, FilterTags: tsFilter}, want: "main-abc123-1700000100"},
		{name: "numerical compares numbers not strings", policy: Policy{Numerical: &OrderPolicy{}}, tags: []string{"9", "10", "latest"}, want: "10"},
		{name: "numerical skips NaN", policy: Policy{Numerical: &OrderPolicy{}}, tags: []string{"NaN", "1", "nan", "2"}, want: "2"},
		{name: "alphabetical over extract", policy: Policy{Alphabetical: &OrderPolicy{}, FilterTags: &TagFilter{Pattern: `^main-(?P<sha>[a-f0-9]+)-`, Extract: "${sha}"}}, want: "main-def456-1700000300"},
		{name: "alphabetical desc", policy: Policy{Alphabetical: &OrderPolicy{Order: Desc}, FilterTags: &TagFilter{Pattern: `^main-`}}, want: "main-0a0a0a-1700000200"},
		{name: "alphabetical whole tag", policy: Policy{Alphabetical: &OrderPolicy{}}, tags: []string{"2024-01-02", "2024-01-10", "2023-12-31"}, want: "2024-01-10"},
		{name: "numbered group", policy: Policy{Numerical: &OrderPolicy{}, FilterTags: &TagFilter{Pattern: `^build-(\d+)$`, Extract: "$1"}}, tags: []string{"build-7", "build-12", "build-x"}, want: "build-12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			tags := tt.tags
			if tags == nil {
				tags = fixtureTags
			}
			g.Expect(tt.policy.Validate()).To(Succeed())
			got, err := tt.policy.Latest(tags)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestPolicy_NoMatchingTag(t *testing.T) {
	g := NewWithT(t)
	_, err := Policy{SemVer: &SemVerPolicy{Range: ">=3.0.0"}}.Latest(fixtureTags)
	g.Expect(IsNoMatchingTag(err)).To(BeTrue(), "%v", err)
	var e *Error
	g.Expect(errors.As(err, &e)).To(BeTrue())
	g.Expect(e.TagsSeen).To(Equal(len(fixtureTags)))
	g.Expect(e.Transient()).To(BeFalse())
	g.Expect(err.Error()).To(ContainSubstring("none of the 8 tags"))

	_, err = Policy{Numerical: &OrderPolicy{}}.Latest(nil)
	g.Expect(IsNoMatchingTag(err)).To(BeTrue())
	g.Expect(err.Error()).To(ContainSubstring("none of the 0 tags"))
}

func TestPolicy_Invalid(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		want   string
	}{
		{name: "no policy", policy: Policy{}, want: "set exactly one of semver, alphabetical or numerical (found 0)"},
		{name: "two policies", policy: Policy{SemVer: &SemVerPolicy{Range: "1.0.0"}, Numerical: &OrderPolicy{}}, want: "(found 2)"},
		{name: "empty range", policy: Policy{SemVer: &SemVerPolicy{Range: " "}}, want: "semver.range is empty"},
		{name: "range does not parse", policy: Policy{SemVer: &SemVerPolicy{Range: ">=one"}}, want: `semver range ">=one" does not parse`},
		{name: "bad order", policy: Policy{Alphabetical: &OrderPolicy{Order: "newest"}}, want: `alphabetical.order "newest" is not one of asc, desc`},
		{name: "bad numerical order", policy: Policy{Numerical: &OrderPolicy{Order: "ASC"}}, want: `numerical.order "ASC"`},
		{name: "pattern does not parse", policy: Policy{Numerical: &OrderPolicy{}, FilterTags: &TagFilter{Pattern: `^main-(`}}, want: `filterTags.pattern "^main-(" does not parse`},
		{name: "extract without pattern", policy: Policy{Numerical: &OrderPolicy{}, FilterTags: &TagFilter{Extract: "$ts"}}, want: "needs a filterTags.pattern"},
		{name: "extract names a missing group", policy: Policy{Numerical: &OrderPolicy{}, FilterTags: &TagFilter{Pattern: `^main-(?P<time>\d+)$`, Extract: "$ts"}}, want: `names group "ts", which filterTags.pattern`},
		{name: "extract numbered group out of range", policy: Policy{Numerical: &OrderPolicy{}, FilterTags: &TagFilter{Pattern: `^main-(\d+)$`, Extract: "$2"}}, want: `names group "2"`},
		{name: "extract unclosed brace", policy: Policy{Numerical: &OrderPolicy{}, FilterTags: &TagFilter{Pattern: `^(?P<ts>\d+)$`, Extract: "${ts"}}, want: "unclosed ${"},
		{name: "extract lone dollar", policy: Policy{Numerical: &OrderPolicy{}, FilterTags: &TagFilter{Pattern: `^(?P<ts>\d+)$`, Extract: "$-"}}, want: "a $ without a group name"},
		{name: "pattern too long", policy: Policy{Numerical: &OrderPolicy{}, FilterTags: &TagFilter{Pattern: string(make([]byte, 2000))}}, want: "the limit is 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := tt.policy.Validate()
			g.Expect(IsInvalidPolicy(err)).To(BeTrue(), "%v", err)
			g.Expect(err.Error()).To(HavePrefix("invalid image policy: "))
			g.Expect(err.Error()).To(ContainSubstring(tt.want))
			_, err = tt.policy.Latest(fixtureTags)
			g.Expect(IsInvalidPolicy(err)).To(BeTrue())
		})
	}
}

func TestPolicy_ExtractEscapes(t *testing.T) {
	g := NewWithT(t)
	// "$$" is a literal dollar, not a group reference.
	p := Policy{Alphabetical: &OrderPolicy{}, FilterTags: &TagFilter{Pattern: `^v(?P<n>\d+)$`, Extract: "$$${n}"}}
	g.Expect(p.Validate()).To(Succeed())
	got, err := p.Latest([]string{"v1", "v3", "v2"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal("v3"))
}

// FuzzPolicy_Latest checks that any policy a user can write either fails
// validation with InvalidPolicy, or selects one of the given tags or
// reports NoMatchingTag, and never panics.
func FuzzPolicy_Latest(f *testing.F) {
	f.Add(">=1.0.0 <2.0.0", "", "", "1.0.0,1.1.0,2.0.0,latest", uint8(0))
	f.Add("", `^main-(?P<ts>\d+)$`, "$ts", "main-1,main-20,main-3", uint8(1))
	f.Add("", `^(?P<a>.)(?P<b>.*)$`, "${b}$a$$", "zz,ab,ba", uint8(2))
	f.Add("^1.2.0-0", `^v(.*)`, "$1", "v1.2.0-rc.1,v1.2.0,v1.3.0", uint8(0))
	f.Add("", `(`, "$", "x", uint8(3))
	f.Add("", "", "", "NaN,2,1,nan", uint8(1))
	f.Fuzz(func(t *testing.T, rng, pattern, extract, tagList string, kind uint8) {
		var p Policy
		switch kind % 4 {
		case 0:
			p.SemVer = &SemVerPolicy{Range: rng}
		case 1:
			p.Numerical = &OrderPolicy{}
		case 2:
			p.Alphabetical = &OrderPolicy{Order: Desc}
		case 3:
			p.Numerical = &OrderPolicy{Order: Order(rng)}
		}
		if pattern != "" || extract != "" {
			p.FilterTags = &TagFilter{Pattern: pattern, Extract: extract}
		}
		tags := strings.Split(tagList, ",")
		got, err := p.Latest(tags)
		if err != nil {
			if r := ReasonOf(err); r != ReasonInvalidPolicy && r != ReasonNoMatchingTag {
				t.Fatalf("unexpected reason %q: %v", r, err)
			}
			if (ReasonOf(err) == ReasonInvalidPolicy) != (p.Validate() != nil) {
				t.Fatalf("Latest and Validate disagree: %v / %v", err, p.Validate())
			}
			return
		}
		if !slices.Contains(tags, got) {
			t.Fatalf("selected %q, which is not among %q", got, tags)
		}
		// The choice does not depend on the order of the list.
		rev := slices.Clone(tags)
		slices.Reverse(rev)
		if again, err := p.Latest(rev); err != nil || again != got {
			t.Fatalf("reversed list gave %q, %v; want %q", again, err, got)
		}
	})
}
