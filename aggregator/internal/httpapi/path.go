package httpapi

import (
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// PathParam returns a URL parameter decoded: chi matches on the escaped
// path when the request has one (a hostname may contain '/' or '%'), so
// the parameter then arrives still escaped. A bad escape is a 400.
func PathParam(r *http.Request, name string) (string, error) {
	v := chi.URLParam(r, name)
	if r.URL.RawPath == "" {
		return v, nil
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", BadRequest("invalid %s in path", name)
	}
	return u, nil
}

// PathHostname is the {hostname} path parameter, decoded and held to the
// rule ingest applies (snapshot.CheckHostname): a 400 otherwise.
func PathHostname(r *http.Request) (string, error) {
	h, err := PathParam(r, "hostname")
	if err != nil {
		return "", err
	}
	if msg := snapshot.CheckHostname(h); msg != "" {
		return "", BadRequest("invalid hostname: %s", msg)
	}
	return h, nil
}
