package api

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestREADMEDocumentsEveryRoute keeps the README's API section in step
// with the router: every method and path served must be documented.
func TestREADMEDocumentsEveryRoute(t *testing.T) {
	a, err := New(Options{Logger: slog.New(slog.DiscardHandler), UI: http.NotFoundHandler()})
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(readme)
	n := 0
	err = chi.Walk(a.handler.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(route, "/")
		switch {
		case route == "" || route == "/*" || route == "/api" || route == "/api/*":
			return nil // the UI and the JSON 404 catch-alls
		case method == http.MethodHead:
			return nil // HEAD is documented once for all GET routes
		}
		n++
		if !strings.Contains(doc, method+" "+route) {
			t.Errorf("README does not document %s %s", method, route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 9 {
		t.Fatalf("walked only %d routes", n)
	}
}
