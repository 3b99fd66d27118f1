package loadtester

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestShellTasksRefusedByDefault(t *testing.T) {
	g := NewWithT(t)
	// Even an allow-listed command is refused while shell tasks are disabled.
	_, hs := newServer(t, Config{Shell: ShellConfig{Allow: []AllowRule{{Exact: "echo hello"}}}})
	for _, typ := range []string{"cmd", "bash", "helm", "kubectl"} {
		code, out := post(t, hs.URL+"/", payload("podinfo", "test", map[string]string{"type": typ, "cmd": "echo hello"}))
		g.Expect(code).To(Equal(http.StatusForbidden), typ)
		g.Expect(out["error"]).To(ContainSubstring("--enable-shell-tasks"), typ)
	}
	// Flagger's default type (cmd when only metadata.cmd is set) too.
	code, _ := post(t, hs.URL+"/", payload("podinfo", "test", map[string]string{"cmd": "echo hello"}))
	g.Expect(code).To(Equal(http.StatusForbidden))
}

func TestShellTasksAllowList(t *testing.T) {
	g := NewWithT(t)
	_, hs := newServer(t, Config{Shell: ShellConfig{
		Enabled: true,
		Allow: []AllowRule{
			{Exact: "echo hello"},
			{Regexp: `echo [a-z]+-[0-9]+`},
			{Exact: "echo $HOME; echo shell", Shell: true},
			{Exact: "sleep 5"},
		},
		Timeout:   300 * time.Millisecond,
		MaxOutput: 8,
	}})
	run := func(typ, cmd string) (int, map[string]any) {
		return post(t, hs.URL+"/", payload("podinfo", "test", map[string]string{"type": typ, "cmd": cmd}))
	}

	code, out := run("cmd", "echo hello")
	g.Expect(code).To(Equal(http.StatusOK), "%v", out)
	g.Expect(out["output"]).To(Equal("hello\n"))

	code, out = run("cmd", "echo abc-42")
	g.Expect(code).To(Equal(http.StatusOK), "%v", out)

	// Output is bounded.
	code, out = run("cmd", "echo abcdefghijkl-1")
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(out["output"]).To(HavePrefix("abcdefgh\n[")) // 8 bytes kept
	g.Expect(out["output"]).To(ContainSubstring("bytes truncated"))

	// Not in the list, or only a prefix of a regexp's match: refused.
	for _, cmd := range []string{"echo bye", "echo abc-42; rm -rf /", "echo hello extra", "ls"} {
		code, out = run("cmd", cmd)
		g.Expect(code).To(Equal(http.StatusForbidden), cmd)
		g.Expect(out["error"]).To(ContainSubstring("not in the allow-list"), cmd)
	}

	// No shell for type cmd: metacharacters are plain arguments to echo.
	code, out = run("cmd", "echo $HOME; echo shell")
	g.Expect(code).To(Equal(http.StatusOK), "%v", out)
	g.Expect(out["output"]).To(HavePrefix("$HOME; e"))
	// bash only for entries marked shell.
	code, out = run("bash", "echo hello")
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Expect(out["error"]).To(ContainSubstring("shell: true"))
	code, out = run("bash", "echo $HOME; echo shell")
	g.Expect(code).To(Equal(http.StatusOK), "%v", out)

	// helm and kubectl match "helm <cmd>" / "kubectl <cmd>".
	code, _ = run("helm", "hello")
	g.Expect(code).To(Equal(http.StatusForbidden))

	// Timeout.
	start := time.Now()
	code, out = run("cmd", "sleep 5")
	g.Expect(code).To(Equal(http.StatusInternalServerError))
	g.Expect(out["error"]).To(ContainSubstring("timed out"))
	g.Expect(time.Since(start)).To(BeNumerically("<", 3*time.Second))
}

func TestShellConcurrencyBound(t *testing.T) {
	g := NewWithT(t)
	_, hs := newServer(t, Config{Shell: ShellConfig{
		Enabled: true, Allow: []AllowRule{{Regexp: `sleep [0-9.]+`}}, MaxConcurrent: 1, Timeout: 5 * time.Second,
	}})
	done := make(chan int)
	go func() {
		code, _ := post(t, hs.URL+"/", payload("a", "test", map[string]string{"type": "cmd", "cmd": "sleep 1"}))
		done <- code
	}()
	time.Sleep(300 * time.Millisecond)
	code, out := post(t, hs.URL+"/", payload("b", "test", map[string]string{"type": "cmd", "cmd": "sleep 0.1"}))
	g.Expect(code).To(Equal(http.StatusTooManyRequests), "%v", out)
	g.Expect(<-done).To(Equal(http.StatusOK))
}

func TestAllowRules(t *testing.T) {
	g := NewWithT(t)
	g.Expect(ParseAllowFlag("re:echo .*")).To(Equal(AllowRule{Regexp: "echo .*"}))
	g.Expect(ParseAllowFlag("echo hi")).To(Equal(AllowRule{Exact: "echo hi"}))
	_, err := compileRules([]AllowRule{{Regexp: "("}})
	g.Expect(err).To(HaveOccurred())
	_, err = compileRules([]AllowRule{{}})
	g.Expect(err).To(HaveOccurred())

	p := filepath.Join(t.TempDir(), "allow.yaml")
	g.Expect(os.WriteFile(p, []byte("commands:\n- exact: echo hi\n- regexp: 'helm test .*'\n  shell: true\n"), 0o600)).To(Succeed())
	rules, err := LoadAllowFile(p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rules).To(HaveLen(2))
	g.Expect(rules[1].Shell).To(BeTrue())
}
