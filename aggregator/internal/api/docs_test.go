package api

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/procscope/procscope/aggregator/internal/events"
	"github.com/procscope/procscope/aggregator/internal/history"
	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/internal/store"
)

// docRouteRE finds the endpoint headings of docs/api.md: "### GET /path".
var docRouteRE = regexp.MustCompile(`(?m)^### ([A-Z]+) (/\S*)$`)

// TestAPIDocumentsEveryRoute keeps docs/api.md, the wire contract, in step
// with the router: every method and path the aggregator serves has a
// "### METHOD /path" heading there, and every such heading is served. The
// API is built as aggregator/serve.go builds it, history routes mounted.
func TestAPIDocumentsEveryRoute(t *testing.T) {
	lazy := new(LazyStore)
	hist := history.NewHandler(nil, lazy, slog.New(slog.DiscardHandler))
	evRoutes := events.NewHandler(func() store.EventStore { return nil }, httpapi.Adapter{})
	a, err := New(Options{
		OnIngest: hist.OnIngest,
		Mount: func(r chi.Router) {
			hist.Mount(r)
			evRoutes.Mount(r)
		},
		Logger: slog.New(slog.DiscardHandler),
		Store:  lazy,
		UI:     http.NotFoundHandler(),
	})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range docRouteRE.FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1]+" "+m[2])
	}

	var mounted []string
	err = chi.Walk(a.handler.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if route != "/" {
			route = strings.TrimSuffix(route, "/")
		}
		switch {
		case route == "/*" || route == "/api" || route == "/api/*":
			return nil // the UI's assets and the JSON 404 catch-alls
		case method == http.MethodHead:
			return nil // HEAD is documented once for all GET routes
		case route == "/" && method != http.MethodGet:
			return nil // the UI is mounted for every method and answers GET only
		}
		mounted = append(mounted, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(mounted) < 14 {
		t.Fatalf("walked only %d routes: %v", len(mounted), mounted)
	}
	for _, r := range mounted {
		if !slices.Contains(documented, r) {
			t.Errorf("docs/api.md has no heading %q for a mounted route", "### "+r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(mounted, d) {
			t.Errorf("docs/api.md documents %q, which the aggregator does not mount", d)
		}
	}
}
