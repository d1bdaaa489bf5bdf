//go:build linux

package dashboarde2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// TestSSLForm creates an SSL through its form, submitted with Enter from
// the keyboard, sees its expiry, then edits its SNIs without giving the
// key again: the form never shows the stored key, and the edit keeps it.
func TestSSLForm(t *testing.T) {
	g := startGateway(t, nil)
	b := newBrowser(t)
	b.login(g, adminKey)
	cert := e2e.NewCertUntil(t, time.Now().Add(45*24*time.Hour+time.Hour), "db.example.com")

	b.goTo("#/ssls/new", "ssls")
	b.fill(map[string]string{"f-cert": cert.CertPEM, "f-key": cert.KeyPEM, "f-snis": "db.example.com"})
	// the id last, and Enter in it submits the form
	b.run(chromedp.Focus(chromedp.ID("f-id")), chromedp.SendKeys(chromedp.ID("f-id"), "db\r"))
	b.waitJS("SSL db listed", `location.hash === '#/ssls' && document.querySelector('tr[data-id="db"]')`)
	if got := b.text(`tr[data-id="db"] [data-days]`); got != "45" {
		t.Errorf("days left %q, want 45", got)
	}

	b.goTo("#/ssls/edit/db", "ssls")
	var key string
	b.eval(`document.getElementById('f-key').value`, &key)
	if key != "" {
		t.Fatalf("the edit form shows a key: %q", key)
	}
	b.fill(map[string]string{"f-snis": "db.example.com, replica.example.com"})
	b.run(chromedp.Click(chromedp.CSS(`form.obj button[type="submit"]`)))
	b.waitJS("SSL db listed again", `location.hash === '#/ssls' && document.querySelector('tr[data-id="db"]')`)
	v := g.api(t, http.MethodGet, "/apisix/admin/ssls/db", nil, http.StatusOK)["value"].(map[string]any)
	if snis, _ := v["snis"].([]any); len(snis) != 2 || snis[1] != "replica.example.com" {
		t.Fatalf("snis after the edit: %v", v["snis"])
	}
	// the stored key was kept: a PATCH validates the merged object, which
	// a server SSL without its key would fail
	g.api(t, http.MethodPatch, "/apisix/admin/ssls/db", map[string]any{"desc": "kept"}, http.StatusOK)
}
