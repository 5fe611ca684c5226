// Package web serves procscope's browser UI: static files embedded in the
// binary with //go:embed, so the aggregator needs no CDN, no build step and
// works air-gapped.
//
// Caching: index.html is always revalidated (no-cache), because it names the
// current version of everything else. It refers to its assets under
// v/<hash>/..., where <hash> is a digest of every embedded file; those URLs
// never change content, so they are cached for a year (immutable) and a new
// build gets new URLs. The same files are also served at their plain paths
// (static/..., vendor/...) with ETag revalidation, for links and for
// development servers that serve web/ui/ as it is.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

//go:embed ui
var uiFS embed.FS

// contentSecurityPolicy is what the UI is written for: no inline script, no
// inline style attributes, nothing from other origins. The aggregator sets
// it too; Handler sets it on index.html only when nobody did, so the UI is
// protected even when mounted by another server.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"

// versionPrefix starts the path of immutable, content-versioned assets.
const versionPrefix = "v/"

type asset struct {
	body        []byte
	etag        string
	contentType string
	// gz is body compressed once at start, nil when that saves too little
	// (images, tiny files): every text file then crosses the network at
	// about a third of its size, at no CPU cost per request.
	gz []byte
}

// minGzipSaving is the share of a file gzip must save to be worth a
// variant.
const minGzipSaving = 0.1

type site struct {
	version string            // digest of all embedded files
	assets  map[string]*asset // keyed by path inside ui/, e.g. "static/app.css"
	index   *asset            // index.html with versioned asset URLs
}

// Handler returns the UI handler, meant to be mounted at "/" after the API
// routes. It answers GET and HEAD only.
func Handler() http.Handler {
	s, err := load(uiFS)
	if err != nil {
		// The files are compiled in: failing here is a build defect that
		// every test catches, not a runtime condition.
		panic(fmt.Sprintf("web: embedded UI unreadable: %v", err))
	}
	return s
}

func load(fsys fs.FS) (*site, error) {
	root, err := fs.Sub(fsys, "ui")
	if err != nil {
		return nil, err
	}
	s := &site{assets: map[string]*asset{}}
	var names []string
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		s.assets[p] = newAsset(p, b)
		names = append(names, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	idx, ok := s.assets["index.html"]
	if !ok {
		return nil, fmt.Errorf("ui/index.html missing")
	}
	// The version covers names and contents of every file, in a fixed order.
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		sum := sha256.Sum256(s.assets[n].body)
		_, _ = fmt.Fprintf(h, "%s\x00%x\x00", n, sum)
	}
	s.version = hex.EncodeToString(h.Sum(nil))[:16]
	// Rewrite only attribute values that start with our asset directories,
	// so relative imports inside the modules stay inside the versioned tree.
	body := idx.body
	for _, dir := range []string{"static/", "vendor/"} {
		body = bytes.ReplaceAll(body, []byte(`="`+dir), []byte(`="`+versionPrefix+s.version+"/"+dir))
	}
	s.index = newAsset("index.html", body)
	return s, nil
}

func newAsset(name string, body []byte) *asset {
	sum := sha256.Sum256(body)
	ct := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js", ".mjs":
		// Module scripts must have a JavaScript type; some systems' mime
		// tables lack it or say application/x-javascript.
		ct = "text/javascript; charset=utf-8"
	case ".css":
		ct = "text/css; charset=utf-8"
	case ".html":
		ct = "text/html; charset=utf-8"
	case ".svg":
		ct = "image/svg+xml"
	case ".md", ".txt", ".LICENSE":
		ct = "text/plain; charset=utf-8"
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	a := &asset{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: ct}
	if len(body) >= 256 {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if float64(buf.Len()) <= float64(len(body))*(1-minGzipSaving) {
			a.gz = buf.Bytes()
		}
	}
	return a
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (a q=0 refuses it).
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
				continue
			}
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")

	if p == "" || p == "index.html" {
		if h.Get("Content-Security-Policy") == "" {
			h.Set("Content-Security-Policy", contentSecurityPolicy)
		}
		h.Set("Cache-Control", "no-cache")
		s.serve(w, r, s.index)
		return
	}

	cache := "no-cache"
	if rest, ok := strings.CutPrefix(p, versionPrefix); ok {
		ver, file, found := strings.Cut(rest, "/")
		if !found {
			http.NotFound(w, r)
			return
		}
		p = file
		if ver == s.version {
			cache = "public, max-age=31536000, immutable"
		}
		// A page of an older build asks for an older version: it gets the
		// current file, revalidated every time, rather than a broken page.
	}
	a, ok := s.assets[p]
	if !ok || p == "index.html" {
		http.NotFound(w, r)
		return
	}
	h.Set("Cache-Control", cache)
	s.serve(w, r, a)
}

func (s *site) serve(w http.ResponseWriter, r *http.Request, a *asset) {
	w.Header().Set("Content-Type", a.contentType)
	if a.gz != nil {
		w.Header().Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			// Its own ETag: a cache must not answer a gzip request with
			// the plain body's validator, or the other way round.
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("ETag", strings.TrimSuffix(a.etag, `"`)+`-gz"`)
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.gz))
			return
		}
	}
	w.Header().Set("ETag", a.etag)
	// ServeContent answers If-None-Match with 304 and handles HEAD and
	// Range; the zero modtime keeps Last-Modified out (the ETag decides).
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
