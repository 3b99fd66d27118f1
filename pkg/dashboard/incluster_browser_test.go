package dashboard_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// In the cluster the browser first gets the login page; pasting a
// ServiceAccount token logs in (the token goes into an HttpOnly cookie, not
// into the page), and the overview then shows that ServiceAccount's Canaries
// live.
func TestInClusterInBrowser_LogsInWithATokenAndSeesTheOverview(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	grantTo(t, ns, userSubject(saUser(ns, "viewer")), "get", "list", "watch")
	token := saToken(t, ns, "viewer")
	ts := startInClusterIn(t, ns, nil)
	ctx := browser(t)

	var mu sync.Mutex
	var problems []string
	g.Expect(chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, fmt.Sprintf("exception: %s %v", e.ExceptionDetails.Text, e.ExceptionDetails.Exception))
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				problems = append(problems, fmt.Sprintf("console.error %v", e.Args))
			}
		}
	})).To(Succeed())

	g.Expect(chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
	)).To(Succeed())
	g.Expect(text(t, ctx, `main`)).To(ContainSubstring("kubectl create token"))
	screenshot(t, ctx, "incluster-login.png")

	// A wrong token: the page says why and stays.
	g.Expect(chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#token`), "not-a-token"),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#login-error`)),
	)).To(Succeed())
	g.Expect(text(t, ctx, `#login-error`)).To(ContainSubstring("Not logged in: the token was not accepted"))

	newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 10})
	row := fmt.Sprintf(`tr[data-key="Canary/%s/podinfo"]`, ns)
	g.Expect(chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitVisible(chromedp.CSS(row)),
		poll(ctx, `document.getElementById("connection").textContent.startsWith("Live")`),
	)).To(Succeed())
	g.Expect(text(t, ctx, row+` td.phase`)).To(Equal("Progressing"))
	// The token is nowhere the page's scripts or its URL could reach.
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cookies).NotTo(ContainSubstring(token[:20]))
	loc, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + JSON.stringify(sessionStorage) + JSON.stringify(localStorage)`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(loc).NotTo(ContainSubstring(token[:20]))
	screenshot(t, ctx, "incluster-overview.png")
	// The footer says who the page acts as; logging out forgets the token
	// and the login page comes back.
	g.Expect(text(t, ctx, `footer`)).To(ContainSubstring("Signed in as " + saUser(ns, "viewer")))
	g.Expect(chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#logout`)),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
	)).To(Succeed())
	// "/" served the login page again: the browser no longer holds a token.

	mu.Lock()
	defer mu.Unlock()
	g.Expect(problems).To(BeEmpty())
}
