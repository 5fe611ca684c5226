package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestHandlerConcurrentScrapes: at most 4 scrapes are answered at once;
// a fifth gets 503 at once instead of piling up gathers.
func TestHandlerConcurrentScrapes(t *testing.T) {
	entered, release := make(chan struct{}, 10), make(chan struct{})
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-time.After(20 * time.Second):
		}
		return nil, nil
	})
	srv := httptest.NewServer(Handler(g, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	get := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		res, err := srv.Client().Do(req)
		if err != nil {
			return -1
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	done := make(chan int, 4)
	for range 4 {
		go func() { done <- get() }()
	}
	for range 4 {
		select {
		case <-entered:
		case <-time.After(20 * time.Second):
			t.Fatal("4 scrapes did not start")
		}
	}
	if code := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("a fifth concurrent scrape: %d, want 503", code)
	}
	close(release)
	for range 4 {
		if code := <-done; code != http.StatusOK {
			t.Fatalf("a held scrape: %d", code)
		}
	}
}
