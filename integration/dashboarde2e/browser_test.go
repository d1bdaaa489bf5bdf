//go:build linux

package dashboarde2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium. Without it the test skips, or
// fails when CI=true (scripts/test.sh installs it).
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is not installed (Debian package chromium; scripts/test.sh installs it)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser is one headless Chromium tab at 1280×800.
type browser struct {
	t   testing.TB
	ctx context.Context
}

// newBrowser starts Chromium (stopped when the test ends) with a fresh
// profile: no stored key, no cache.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelB()
		cancelA()
	})
	b := &browser{t: t, ctx: ctx}
	// the first action starts the browser: without a timeout, which
	// would stop it (chromedp.Run)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return b
}

// run runs actions, bounded by uiWait, and fails the test on an error.
func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, uiWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\npage: %s", err, b.snapshot())
	}
}

// js runs a statement in the page for its effect.
func (b *browser) js(stmt string) {
	b.t.Helper()
	var ok bool
	b.eval(`(() => { `+stmt+`; return true })()`, &ok)
}

// snapshot is the visible text of the page, for failure messages.
func (b *browser) snapshot() string {
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	if len(s) > 3000 {
		s = s[:3000] + "…"
	}
	return s
}

// eval evaluates a JavaScript expression into out (a pointer).
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, uiWait)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err == nil {
		err = json.Unmarshal(raw, out)
	}
	if err != nil {
		b.t.Fatalf("evaluating %s: %v\npage: %s", expr, err, b.snapshot())
	}
}

// waitJS waits, bounded by uiWait, until expr is truthy in the page.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(uiWait)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+expr+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting for %s: not within %s (last error %v)\npage: %s", what, uiWait, err, b.snapshot())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitPage waits until the router finished rendering page.
func (b *browser) waitPage(page string) {
	b.t.Helper()
	b.waitJS("page "+page, fmt.Sprintf(`document.querySelector('main').dataset.page === %q && document.querySelector('main').dataset.ready !== ''`, page))
}

// go navigates within the app (the hash route) and waits for page.
func (b *browser) goTo(hash, page string) {
	b.t.Helper()
	b.js(fmt.Sprintf(`location.hash = %s`, jsString(hash)))
	b.waitPage(page)
}

// text is the text content of the first element matching sel ("" if none).
func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.eval(fmt.Sprintf(`(document.querySelector(%s) || {textContent: ''}).textContent`, jsString(sel)), &s)
	return s
}

// count is how many elements match sel.
func (b *browser) count(sel string) int {
	b.t.Helper()
	var n int
	b.eval(fmt.Sprintf(`document.querySelectorAll(%s).length`, jsString(sel)), &n)
	return n
}

// login opens the dashboard and signs in with key by typing it and
// pressing Enter; it waits for the overview.
func (b *browser) login(g *gateway, key string) {
	b.t.Helper()
	b.run(chromedp.Navigate(g.baseURL()), chromedp.WaitVisible(chromedp.ID("key")))
	b.run(chromedp.SendKeys(chromedp.ID("key"), key+"\r"))
	b.waitPage("overview")
}

// fill sets form fields by element id: cleared, then typed with the
// keyboard for one-line inputs; set at once for multi-line text.
func (b *browser) fill(fields map[string]string) {
	b.t.Helper()
	for id, v := range fields {
		el := fmt.Sprintf(`document.getElementById(%s)`, jsString(id))
		var tag string
		b.eval(el+`.tagName`, &tag)
		if tag == "TEXTAREA" || v == "" {
			b.js(fmt.Sprintf(`%s.value = %s`, el, jsString(v)))
			continue
		}
		b.js(el + `.value = ''`)
		b.run(chromedp.SendKeys(chromedp.ID(id), v))
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
