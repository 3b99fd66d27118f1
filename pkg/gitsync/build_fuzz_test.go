package gitsync

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// stolen is the name of the ConfigMap kept outside the checkout: a build
// that returns it has read a file it must not.
const stolen = "stolen-from-outside"

// FuzzBuild lays out a checkout from the fuzzer's script (files, directories,
// symlinks with any target, kustomizations with any resources) next to a
// directory holding a manifest, then confines and builds an arbitrary
// spec.path. Invariants: no panic, an answer in bounded time, a confined path
// inside the checkout, and no object read from outside it.
//
// The script has one operation a line: "f PATH" (a ConfigMap manifest),
// "d PATH", "l PATH TARGET" (a symlink; $OUT and $ROOT in TARGET are the
// outside directory and the checkout) and "k DIR RES,RES" (a kustomization).

// cmYAML is a ConfigMap manifest; %s is its name.
const cmYAML = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n"

func FuzzBuild(f *testing.F) {
	f.Add("f deploy/a.yaml\nl deploy/b.yaml a.yaml", "deploy")
	f.Add("f deploy/a.yaml\nl deploy/out $OUT", "deploy")
	f.Add("f deploy/a.yaml\nl deploy/s.yaml $OUT/secret.yaml", "deploy")
	f.Add("l escape ../", "escape")
	f.Add("l escape $OUT", "escape")
	f.Add("l x $ROOT/../"+"out", "x")
	f.Add("k deploy ../../out/secret.yaml", "deploy")
	f.Add("k deploy $OUT/secret.yaml", "deploy")
	f.Add("k deploy ../base\nk base ../../out\nf base/x.yaml", "deploy")
	f.Add("k deploy https://github.com/org/repo//x?ref=main", "deploy")
	f.Add("d a\nl a/l1 .\nl a/l2 .\nl a/l3 .\nl a/l4 .\nf a/x.yaml", "a")
	f.Add("d a\nl a/up ..\nf a/x.yaml", "a")
	f.Add("l a b\nl b a", "a")
	f.Add("f x.yaml", "./")
	f.Add("f x.yaml", "/etc")
	f.Add("f x.yaml", "a/../../")
	f.Fuzz(func(t *testing.T, script, path string) {
		base := t.TempDir()
		root, out := filepath.Join(base, "repo"), filepath.Join(base, "out")
		for _, d := range []string{root, out} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(out, "secret.yaml"), fmt.Appendf(nil, cmYAML, stolen), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "kustomization.yaml"), []byte("resources: [secret.yaml]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		layOut(root, out, script)

		type result struct {
			dir  string
			err  error
			objs []string
			berr error
		}
		done := make(chan result, 1)
		go func() {
			var r result
			r.dir, r.err = ConfinePath(root, path)
			objs, err := Build(root, path)
			r.berr = err
			for _, o := range objs {
				r.objs = append(r.objs, o.GetName())
			}
			done <- r
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("the build of %q with layout %q runs for more than 20s", path, script)
		}
		realRoot, _ := filepath.EvalSymlinks(root)
		if r.err == nil && !within(realRoot, r.dir) {
			t.Fatalf("ConfinePath(%q) = %s, outside %s", path, r.dir, realRoot)
		}
		for _, name := range r.objs {
			if strings.Contains(name, stolen) {
				t.Fatalf("the build of %q read %s from outside the checkout (layout %q)", path, name, script)
			}
		}
	})
}

// layOut creates the checkout described by a fuzz script. Only the paths it
// creates are confined to root; symlink targets and resources are anything.
func layOut(root, out, script string) {
	lines := strings.Split(script, "\n")
	if len(lines) > 32 {
		lines = lines[:32]
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		p, ok := confined(root, f[1])
		if !ok {
			continue
		}
		arg := ""
		if len(f) > 2 {
			arg = strings.NewReplacer("$OUT", out, "$ROOT", root).Replace(f[2])
		}
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		switch f[0] {
		case "f":
			_ = os.WriteFile(p, fmt.Appendf(nil, cmYAML, strings.ReplaceAll(strings.ToLower(filepath.Base(p)), ".", "-")), 0o644)
		case "d":
			_ = os.MkdirAll(p, 0o755)
		case "l":
			_ = os.Symlink(arg, p)
		case "k":
			_ = os.MkdirAll(p, 0o755)
			var res []string
			for _, r := range strings.Split(arg, ",") {
				res = append(res, fmt.Sprintf("%q", r))
			}
			_ = os.WriteFile(filepath.Join(p, "kustomization.yaml"), []byte("resources: ["+strings.Join(res, ", ")+"]\n"), 0o644)
		}
	}
}

// confined joins a script path to root, or says no when it would leave it
// (lexically, or through a symlink the script made earlier).
func confined(root, rel string) (string, bool) {
	if filepath.IsAbs(rel) || strings.Contains(rel, "..") || strings.ContainsRune(rel, 0) {
		return "", false
	}
	p := filepath.Join(root, rel)
	if p == root {
		return "", false
	}
	for d := filepath.Dir(p); d != root; d = filepath.Dir(d) {
		if fi, err := os.Lstat(d); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return "", false
		}
	}
	return p, true
}

func TestBuild_SymlinkLoopRefused(t *testing.T) {
	g := NewWithT(t)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"a/x.yaml": fmt.Sprintf(cmYAML, "x")})
	g.Expect(os.Symlink(".", filepath.Join(root, "a", "self"))).To(Succeed())
	_, err := Build(root, "a")
	g.Expect(err).To(MatchError(ContainSubstring("symlink a/self: it loops back to a: remove it")))
	g.Expect(os.Remove(filepath.Join(root, "a", "self"))).To(Succeed())
	g.Expect(os.Symlink("..", filepath.Join(root, "a", "up"))).To(Succeed())
	_, err = Build(root, "a")
	g.Expect(err).To(MatchError(ContainSubstring("symlink a/up: it loops back to .")))
}

// TestBuild_SymlinkFanOutBounded: d0 holds two links to d1, d1 two links to
// d2, and so on: no loop, but 2^depth copies of the last directory.
func TestBuild_SymlinkFanOutBounded(t *testing.T) {
	g := NewWithT(t)
	root := t.TempDir()
	const depth = 24
	for i := range depth {
		dir := filepath.Join(root, fmt.Sprintf("d%d", i))
		g.Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
		for _, l := range []string{"x", "y"} {
			g.Expect(os.Symlink(fmt.Sprintf("../d%d", i+1), filepath.Join(dir, l))).To(Succeed())
		}
	}
	writeFiles(t, root, map[string]string{fmt.Sprintf("d%d/cm.yaml", depth): fmt.Sprintf(cmYAML, "leaf")})
	done := make(chan error, 1)
	go func() { _, err := Build(root, fmt.Sprintf("d%d", depth)); done <- err }()
	select {
	case err := <-done:
		g.Expect(err).To(MatchError(ContainSubstring("expand to more than 16384 files and directories: link fewer directories")))
		g.Expect(errors.Is(err, ErrOutsideCheckout)).To(BeFalse())
	case <-time.After(60 * time.Second):
		t.Fatal("2^24 copies through symlinks keep the build busy for more than 60s")
	}
}
