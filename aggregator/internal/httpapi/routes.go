package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

// Observer records one answer of a named route: the aggregator's request
// counter by route and status, and its duration histogram by route.
type Observer func(route string, status int, took time.Duration)

type observerKey struct{}

// Observe hands obs to the routes below it, which report each answer to it
// (Route). The API's router installs it once, so routes that other
// packages mount (history) are counted like its own.
func Observe(obs Observer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), observerKey{}, obs)))
		})
	}
}

// Route names the route below it in metrics: each answer is reported to the
// Observer above it, with its status and how long the route took (a stream
// until it ends). Requests refused before a route is reached (auth, not
// ready, unknown paths) are not. Without an Observer (a package's own
// tests) Route does nothing.
func Route(name string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			obs, _ := r.Context().Value(observerKey{}).(Observer)
			if obs == nil {
				next.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			obs(name, status, time.Since(start))
		})
	}
}
