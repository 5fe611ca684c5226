package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var assetRef = regexp.MustCompile(`(?:src|href)="(v/[0-9a-f]{16}/[^"]+)"`)

func TestIndexIsRevalidatedAndNamesVersionedAssets(t *testing.T) {
	h := Handler()
	for _, target := range []string{"/", "/index.html"} {
		r := get(t, h, http.MethodGet, target, nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", target, r.StatusCode)
		}
		if got := r.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s: Cache-Control %q, want no-cache", target, got)
		}
		if got := r.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/html") {
			t.Errorf("%s: Content-Type %q", target, got)
		}
		if !strings.Contains(r.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s: no CSP set when none was present", target)
		}
		b := body(t, r)
		refs := assetRef.FindAllStringSubmatch(b, -1)
		// favicon, stylesheet, modulepreload, main module
		if len(refs) < 3 {
			t.Fatalf("%s: want versioned asset references, found %d in\n%s", target, len(refs), b)
		}
		if strings.Contains(b, `="static/`) {
			t.Errorf("%s: an unversioned static/ reference survived the rewrite", target)
		}
		for _, ref := range refs {
			a := get(t, h, http.MethodGet, "/"+ref[1], nil)
			if a.StatusCode != http.StatusOK {
				t.Errorf("%s: status %d", ref[1], a.StatusCode)
			}
			if got := a.Header.Get("Cache-Control"); !strings.Contains(got, "immutable") || !strings.Contains(got, "max-age=31536000") {
				t.Errorf("%s: Cache-Control %q, want a year, immutable", ref[1], got)
			}
		}
	}
}

func TestExistingCSPIsKept(t *testing.T) {
	h := Handler()
	const outer = "default-src 'none'"
	wrapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", outer)
		h.ServeHTTP(w, r)
	})
	r := get(t, wrapped, http.MethodGet, "/", nil)
	if got := r.Header.Get("Content-Security-Policy"); got != outer {
		t.Fatalf("CSP %q, want the mounting server's %q", got, outer)
	}
}

func TestAssetTypesAndRevalidation(t *testing.T) {
	h := Handler()
	f := func(path, wantType string) {
		t.Helper()
		r := get(t, h, http.MethodGet, path, nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, r.StatusCode)
		}
		if got := r.Header.Get("Content-Type"); got != wantType {
			t.Errorf("%s: Content-Type %q, want %q", path, got, wantType)
		}
		if got := r.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s: unversioned path Cache-Control %q, want no-cache", path, got)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
		etag := r.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("%s: no ETag", path)
		}
		r2 := get(t, h, http.MethodGet, path, map[string]string{"If-None-Match": etag})
		if r2.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: status %d, want 304", path, r2.StatusCode)
		}
	}
	f("/static/js/main.js", "text/javascript; charset=utf-8")
	f("/static/js/tree.js", "text/javascript; charset=utf-8")
	f("/static/app.css", "text/css; charset=utf-8")
	f("/vendor/uPlot.esm.js", "text/javascript; charset=utf-8")
	f("/vendor/uPlot.LICENSE", "text/plain; charset=utf-8")
}

func TestOldVersionIsServedButNotCachedForever(t *testing.T) {
	h := Handler()
	r := get(t, h, http.MethodGet, "/v/0000000000000000/static/app.css", nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d", r.StatusCode)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control %q for a stale version, want no-cache", got)
	}
}

func TestRejects(t *testing.T) {
	h := Handler()
	f := func(method, path string, want int) {
		t.Helper()
		r := get(t, h, method, path, nil)
		if r.StatusCode != want {
			t.Errorf("%s %s: status %d, want %d", method, path, r.StatusCode, want)
		}
		if want == http.StatusMethodNotAllowed && r.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", method, path, r.Header.Get("Allow"))
		}
	}
	f(http.MethodGet, "/nope.js", http.StatusNotFound)
	f(http.MethodGet, "/static/", http.StatusNotFound)
	f(http.MethodGet, "/static", http.StatusNotFound)
	f(http.MethodGet, "/v/", http.StatusNotFound)
	f(http.MethodGet, "/v/abc", http.StatusNotFound)
	f(http.MethodGet, "/../web.go", http.StatusNotFound)
	f(http.MethodGet, "/v/x/index.html", http.StatusNotFound)
	f(http.MethodPost, "/", http.StatusMethodNotAllowed)
	f(http.MethodDelete, "/static/app.css", http.StatusMethodNotAllowed)
	f(http.MethodHead, "/static/app.css", http.StatusOK)
}

func TestVersionFollowsContent(t *testing.T) {
	mk := func(css string) *site {
		s, err := load(fstest.MapFS{
			"ui/index.html":       {Data: []byte(`<link href="static/a.css"><script src="static/a.js"></script>`)},
			"ui/static/a.css":     {Data: []byte(css)},
			"ui/static/a.js":      {Data: []byte("export {}")},
			"ui/vendor/x.LICENSE": {Data: []byte("MIT")},
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b, c := mk("a{}"), mk("a{}"), mk("b{}")
	if a.version != b.version {
		t.Errorf("same content, different versions %s %s", a.version, b.version)
	}
	if a.version == c.version {
		t.Errorf("changed content kept version %s", a.version)
	}
	want := `<link href="v/` + c.version + `/static/a.css"><script src="v/` + c.version + `/static/a.js"></script>`
	if got := string(c.index.body); got != want {
		t.Errorf("index rewrite:\n got %s\nwant %s", got, want)
	}
}

func TestLoadWithoutIndexFails(t *testing.T) {
	_, err := load(fstest.MapFS{"ui/static/a.css": {Data: []byte("a{}")}})
	if err == nil {
		t.Fatal("load without ui/index.html succeeded")
	}
}

// TestGzip: text assets go out gzip-compressed to clients that accept it,
// with their own ETag and Vary, and plain to the others.
func TestGzip(t *testing.T) {
	h := Handler()
	for _, target := range []string{"/", "/static/app.css", "/static/js/main.js"} {
		plain := get(t, h, http.MethodGet, target, nil)
		pb := body(t, plain)
		if plain.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: Content-Encoding %q without Accept-Encoding", target, plain.Header.Get("Content-Encoding"))
		}
		r := get(t, h, http.MethodGet, target, map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
		if r.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(r.Header.Get("Vary"), "Accept-Encoding") {
			t.Fatalf("%s: Content-Encoding %q Vary %q", target, r.Header.Get("Content-Encoding"), r.Header.Get("Vary"))
		}
		if r.Header.Get("ETag") == plain.Header.Get("ETag") {
			t.Errorf("%s: the gzip and plain bodies share the ETag %s", target, r.Header.Get("ETag"))
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil || string(b) != pb {
			t.Fatalf("%s: gunzipped body differs (%v)", target, err)
		}
		if len(raw) >= len(pb)/2 {
			t.Errorf("%s: %d bytes compressed of %d", target, len(raw), len(pb))
		}
		// A revalidation with the gzip ETag is a 304.
		nm := get(t, h, http.MethodGet, target, map[string]string{"Accept-Encoding": "gzip", "If-None-Match": r.Header.Get("ETag")})
		if nm.StatusCode != http.StatusNotModified {
			t.Errorf("%s: revalidation status %d", target, nm.StatusCode)
		}
		refused := get(t, h, http.MethodGet, target, map[string]string{"Accept-Encoding": "gzip;q=0, identity"})
		if refused.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: gzip sent although refused with q=0", target)
		}
	}
}
